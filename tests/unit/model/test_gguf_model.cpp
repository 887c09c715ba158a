#include <gtest/gtest.h>

#include "core/error.h"
#include "core/half.h"
#include <map>
#include "model/gguf_weights.h"
#include "model/model_source.h"
#include "model/safetensors_weights.h"
#include "model/tensor_names.h"
#include "gguf_builder.h"
#include "model_test_util.h"

namespace nanovllm {
namespace {

using namespace testing_util;
using B = GgufBuilder;

const std::string kStories = std::string(NANOVLLM_SHARED_DIR) + "/models/stories260K";


// llama.cpp's convert_hf_to_gguf.py permute(), in its numpy form:
//   w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)
std::vector<float> llama_cpp_permute(const std::vector<float>& w, int64_t n_head, int64_t rows, int64_t cols) {
  const int64_t half = rows / n_head / 2;
  std::vector<float> out(w.size());
  // out[h][i][j][:] = w[h][j][i][:]
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t c = 0; c < cols; ++c)
          out[size_t((((h * half + i) * 2 + j) * cols) + c)] = w[size_t((((h * 2 + j) * half + i) * cols) + c)];
  return out;
}

void add_llama_metadata(GgufBuilder& b, const std::string& arch, const ModelConfig& c) {
  b.kv_string("general.architecture", arch);
  b.kv_string("general.name", "test model");
  b.kv<uint32_t>(arch + ".embedding_length", B::U32, uint32_t(c.hidden_size));
  b.kv<uint32_t>(arch + ".block_count", B::U32, uint32_t(c.num_hidden_layers));
  b.kv<uint32_t>(arch + ".feed_forward_length", B::U32, uint32_t(c.intermediate_size));
  b.kv<uint32_t>(arch + ".attention.head_count", B::U32, uint32_t(c.num_attention_heads));
  b.kv<uint32_t>(arch + ".attention.head_count_kv", B::U32, uint32_t(c.num_key_value_heads));
  b.kv<uint32_t>(arch + ".attention.key_length", B::U32, uint32_t(c.head_dim));
  b.kv<uint32_t>(arch + ".context_length", B::U32, uint32_t(c.max_position_embeddings));
  b.kv<float>(arch + ".rope.freq_base", B::F32, float(c.rope_theta));
  b.kv<float>(arch + ".attention.layer_norm_rms_epsilon", B::F32, c.rms_norm_eps);
  b.kv<uint32_t>("tokenizer.ggml.bos_token_id", B::U32, uint32_t(c.bos_token_id));
  b.kv<uint32_t>("tokenizer.ggml.eos_token_id", B::U32, uint32_t(c.eos_token_ids.at(0)));
  b.kv_string("tokenizer.ggml.model", "llama");
}

// HF name -> GGUF name, written out independently of gguf_tensor_name().
std::string gguf_name_of(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const size_t dot = hf.find('.', 13);
  const std::string layer = hf.substr(13, dot - 13), rest = hf.substr(dot + 1);
  const std::vector<std::pair<std::string, std::string>> table = {
      {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},       {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},        {"mlp.down_proj.weight", "ffn_down.weight"}};
  for (const auto& [h, g] : table)
    if (rest == h) return "blk." + layer + "." + g;
  ADD_FAILURE() << "no GGUF name for " << hf;
  return "";
}

std::vector<uint64_t> gguf_dims(const std::vector<int64_t>& hf_shape) {
  return std::vector<uint64_t>(hf_shape.rbegin(), hf_shape.rend());
}

TEST(GgufModel, Stories260KAsLlamaGgufMatchesSafetensors) {
  ModelConfig c = load_model_config(kStories + "/config.json");
  auto st = open_safetensors_folder(kStories);
  GgufBuilder b;
  add_llama_metadata(b, "llama", c);
  for (const auto& spec : model_tensor_specs(c)) {
    auto w = st->load_f32(spec.name, spec.shape);
    const bool q = spec.name.find("q_proj.weight") != std::string::npos;
    const bool k = spec.name.find("k_proj.weight") != std::string::npos;
    if (q || k) w = llama_cpp_permute(w, q ? c.num_attention_heads : c.num_key_value_heads, spec.shape[0], spec.shape[1]);
    b.tensor(gguf_name_of(spec.name), gguf_dims(spec.shape), 0, as_bytes(w));
  }
  ScratchDir dir;
  write_bytes(dir / "stories.gguf", b.build());

  LoadedModel m = open_model((dir / "stories.gguf").string(), "", "auto", 0);
  EXPECT_EQ(m.tokenizer_dir_or_file, dir / "stories.gguf");
  const ModelConfig& g = m.config;
  EXPECT_EQ(g.arch, Architecture::Llama);
  EXPECT_EQ(g.architecture_name, "LlamaForCausalLM");
  EXPECT_EQ(g.hidden_size, c.hidden_size);
  EXPECT_EQ(g.intermediate_size, c.intermediate_size);
  EXPECT_EQ(g.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(g.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(g.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(g.head_dim, c.head_dim);
  EXPECT_EQ(g.vocab_size, c.vocab_size);
  EXPECT_EQ(g.max_position_embeddings, c.max_position_embeddings);
  EXPECT_EQ(g.rope_theta, c.rope_theta);
  EXPECT_FLOAT_EQ(g.rms_norm_eps, c.rms_norm_eps);
  EXPECT_TRUE(g.tie_word_embeddings);
  EXPECT_FALSE(g.qk_norm);
  EXPECT_FALSE(g.attention_bias);
  EXPECT_EQ(g.torch_dtype, DType::F32);
  EXPECT_EQ(g.bos_token_id, 1);
  EXPECT_EQ(g.eos_token_ids, std::vector<int32_t>{2});
  EXPECT_FALSE(m.weights->contains("lm_head.weight"));
  // Every tensor, q and k included (un-permuted), equals the HF original exactly.
  for (const auto& spec : model_tensor_specs(c)) {
    ASSERT_TRUE(m.weights->contains(spec.name)) << spec.name;
    EXPECT_EQ(m.weights->load_f32(spec.name, spec.shape), st->load_f32(spec.name, spec.shape)) << spec.name;
  }
  auto msg = error_of([&] { m.weights->load_f32("model.layers.0.self_attn.k_proj.weight", std::vector<int64_t>{64, 32}); });
  EXPECT_CONTAINS(msg, "stories.gguf");
  EXPECT_CONTAINS(msg, "blk.0.attn_k.weight");
  EXPECT_CONTAINS(msg, "[32, 64]");
}

// Qwen2/Qwen3 GGUFs are not permuted; Qwen3 has q/k norms, Qwen2 q/k/v biases.
TEST(GgufModel, QwenArchitecturesKeepRowOrder) {
  for (const std::string arch : {"qwen3", "qwen2"}) {
    ModelConfig c;
    c.arch = arch == "qwen3" ? Architecture::Qwen3 : Architecture::Qwen2;
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;  // not hidden / heads: key_length must be used
    c.vocab_size = 100;
    c.max_position_embeddings = 256;
    c.rope_theta = 1e6;
    c.rms_norm_eps = 1e-6f;
    c.tie_word_embeddings = false;
    c.qk_norm = c.arch == Architecture::Qwen3;
    c.attention_bias = c.arch == Architecture::Qwen2;
    c.bos_token_id = 7;
    c.eos_token_ids = {9};
    GgufBuilder b;
    add_llama_metadata(b, arch, c);
    b.kv<uint32_t>("tokenizer.ggml.eot_token_id", B::U32, 11);
    uint32_t seed = 100;
    std::map<std::string, std::vector<float>> written;
    for (const auto& spec : model_tensor_specs(c)) {
      int64_t n = 1;
      for (auto d : spec.shape) n *= d;
      auto w = random_floats(size_t(n), seed++);
      // Store half of the tensors as F16 to cover conversion (values rounded through F16 first).
      const bool f16 = seed % 2 == 0;
      if (f16) {
        std::vector<uint16_t> h(w.size());
        for (size_t i = 0; i < w.size(); ++i) {
          h[i] = float_to_f16(w[i]);
          w[i] = f16_to_float(h[i]);
        }
        b.tensor(gguf_name_of(spec.name), gguf_dims(spec.shape), 1, as_bytes(h));
      } else {
        b.tensor(gguf_name_of(spec.name), gguf_dims(spec.shape), 0, as_bytes(w));
      }
      written[spec.name] = w;
    }
    ScratchDir dir;
    write_bytes(dir / "q.gguf", b.build());
    GgufModel m = open_gguf_model(dir / "q.gguf");
    EXPECT_EQ(m.config.arch, c.arch) << arch;
    EXPECT_EQ(m.config.head_dim, 16);
    EXPECT_EQ(m.config.qk_norm, c.qk_norm);
    EXPECT_EQ(m.config.attention_bias, c.attention_bias);
    EXPECT_FALSE(m.config.tie_word_embeddings);
    EXPECT_EQ(m.config.torch_dtype, DType::F16);
    EXPECT_EQ(m.config.eos_token_ids, (std::vector<int32_t>{9, 11}));
    EXPECT_EQ(m.file->get_string("tokenizer.ggml.model"), "llama");
    for (const auto& spec : model_tensor_specs(m.config)) {
      ASSERT_TRUE(written.count(spec.name)) << spec.name;
      EXPECT_EQ(m.weights->load_f32(spec.name, spec.shape), written[spec.name]) << arch << " " << spec.name;
    }
  }
}

TEST(GgufModel, MetadataErrorsNameTheKey) {
  ScratchDir dir;
  ModelConfig c = *preset_config("llama-tiny");
  {
    GgufBuilder b;
    add_llama_metadata(b, "gpt2", c);
    write_bytes(dir / "a.gguf", b.build());
    auto msg = error_of([&] { open_model((dir / "a.gguf").string(), "", "auto", 0); });
    EXPECT_CONTAINS(msg, "a.gguf");
    EXPECT_CONTAINS(msg, "general.architecture");
    EXPECT_CONTAINS(msg, "gpt2");
  }
  {
    GgufBuilder b;
    b.kv_string("general.architecture", "llama");
    b.kv<uint32_t>("llama.embedding_length", B::U32, 64);
    write_bytes(dir / "b.gguf", b.build());
    auto msg = error_of([&] { open_model((dir / "b.gguf").string(), "", "auto", 0); });
    EXPECT_CONTAINS(msg, "llama.block_count");
  }
  {
    GgufBuilder b;
    add_llama_metadata(b, "llama", c);  // no tensors at all
    write_bytes(dir / "c.gguf", b.build());
    auto msg = error_of([&] { open_model((dir / "c.gguf").string(), "", "auto", 0); });
    EXPECT_CONTAINS(msg, "token_embd.weight");
  }
}

TEST(GgufModel, HfToGgufNames) {
  EXPECT_EQ(gguf_tensor_name("model.layers.12.self_attn.o_proj.weight"), "blk.12.attn_output.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.0.mlp.down_proj.weight"), "blk.0.ffn_down.weight");
  EXPECT_EQ(gguf_tensor_name("lm_head.weight"), "output.weight");
  EXPECT_FALSE(gguf_tensor_name("model.layers.x.mlp.down_proj.weight").has_value());
  EXPECT_FALSE(gguf_tensor_name("model.layers.0.mlp.act").has_value());
}

}  // namespace
}  // namespace nanovllm
