#include "model/gguf_weights.h"

#include <algorithm>

#include "core/error.h"
#include "model/tensor_names.h"

namespace nanovllm {
namespace {

// HF tensor names inside a layer and their GGUF counterparts.
struct LayerName {
  const char* hf;
  const char* gguf;
};
constexpr LayerName kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

// llama.cpp's converter stores the q/k rows of each head of a `llama` model interleaved for its
// GPT-J-style RoPE: GGUF row (head, i, j) holds HF row (head, j, i) for i < D/2, j in {0, 1}.
// Undo that, so HF's rotate-half RoPE applies.  w: [heads * D, cols] (or [heads * D] for biases).
std::vector<float> unpermute_rows(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols) {
  const int64_t d = rows / heads, half = d / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < 2; ++j) {
      for (int64_t i = 0; i < half; ++i) {
        const float* src = w.data() + (h * d + 2 * i + j) * cols;
        float* dst = out.data() + (h * d + j * half + i) * cols;
        std::copy(src, src + cols, dst);
      }
    }
  }
  return out;
}

class GgufWeights final : public WeightSource {
 public:
  GgufWeights(std::shared_ptr<const GgufFile> file, const ModelConfig& config)
      : file_(std::move(file)), config_(config) {}

  bool contains(const std::string& name) const override {
    auto g = gguf_tensor_name(name);
    return g && file_->find_tensor(*g) != nullptr;
  }

  std::vector<float> load_f32(const std::string& name, std::span<const int64_t> expected_shape) const override {
    auto g = gguf_tensor_name(name);
    const GgufTensorInfo* t = g ? file_->find_tensor(*g) : nullptr;
    NANOVLLM_CHECK(t != nullptr, file_->source_name(), ": tensor '", name, "' (GGUF '", g.value_or("?"),
                   "') not found");
    std::vector<int64_t> hf_shape(t->dims.rbegin(), t->dims.rend());
    NANOVLLM_CHECK(std::equal(hf_shape.begin(), hf_shape.end(), expected_shape.begin(), expected_shape.end()),
                   file_->source_name(), ": tensor '", *g, "' (HF '", name, "') has shape ", shape_string(hf_shape),
                   " (GGUF dims ", shape_string(t->dims), "), expected ", shape_string(expected_shape));
    std::vector<float> values = file_->tensor_f32(*t);
    if (config_.arch == Architecture::Llama) {
      const bool q = name.find("self_attn.q_proj.") != std::string::npos;
      const bool k = name.find("self_attn.k_proj.") != std::string::npos;
      if (q || k) {
        const int64_t heads = q ? config_.num_attention_heads : config_.num_key_value_heads;
        const int64_t rows = hf_shape[0], cols = hf_shape.size() > 1 ? hf_shape[1] : 1;
        NANOVLLM_CHECK(rows % (2 * heads) == 0, file_->source_name(), ": tensor '", *g, "' has ", rows,
                       " rows, not a multiple of 2 x ", heads, " heads");
        values = unpermute_rows(values, heads, rows, cols);
      }
    }
    return values;
  }

  std::string describe() const override { return file_->source_name(); }

 private:
  std::shared_ptr<const GgufFile> file_;
  ModelConfig config_;
};

}  // namespace

std::optional<std::string> gguf_tensor_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) != 0) return std::nullopt;
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return std::nullopt;
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  for (char ch : layer) {
    if (ch < '0' || ch > '9') return std::nullopt;
  }
  const std::string rest = hf.substr(dot + 1);
  for (const auto& n : kLayerNames) {
    if (rest == n.hf) return "blk." + layer + "." + n.gguf;
  }
  return std::nullopt;
}

ModelConfig gguf_model_config(const GgufFile& f) {
  const std::string& src = f.source_name();
  const auto arch_name = f.get_string("general.architecture");
  NANOVLLM_CHECK(arch_name.has_value(), src, ": metadata key 'general.architecture' is missing");
  ModelConfig c;
  if (*arch_name == "llama") {
    c.arch = Architecture::Llama;
  } else if (*arch_name == "qwen2") {
    c.arch = Architecture::Qwen2;
  } else if (*arch_name == "qwen3") {
    c.arch = Architecture::Qwen3;
  } else {
    throw_error(src, ": metadata key 'general.architecture' = \"", *arch_name,
                "\" is not supported (supported: llama, qwen2, qwen3)");
  }
  c.architecture_name = std::string(architecture_name(c.arch));
  const std::string& a = *arch_name;
  auto required_int = [&](const std::string& key) -> int32_t {
    auto v = f.get_int(key);
    NANOVLLM_CHECK(v.has_value(), src, ": metadata key '", key, "' is missing");
    NANOVLLM_CHECK(*v > 0 && *v <= INT32_MAX, src, ": metadata key '", key, "' = ", *v, " is out of range");
    return int32_t(*v);
  };
  c.hidden_size = required_int(a + ".embedding_length");
  c.num_hidden_layers = required_int(a + ".block_count");
  c.num_attention_heads = required_int(a + ".attention.head_count");
  c.num_key_value_heads =
      f.has(a + ".attention.head_count_kv") ? required_int(a + ".attention.head_count_kv") : c.num_attention_heads;
  c.intermediate_size = required_int(a + ".feed_forward_length");
  c.max_position_embeddings = required_int(a + ".context_length");
  c.head_dim = f.has(a + ".attention.key_length") ? required_int(a + ".attention.key_length")
                                                  : c.hidden_size / c.num_attention_heads;
  c.rope_theta = f.get_float(a + ".rope.freq_base").value_or(10000.0);
  c.rms_norm_eps = float(f.get_float(a + ".attention.layer_norm_rms_epsilon").value_or(1e-6));
  if (auto type = f.get_string(a + ".rope.scaling.type"); type && *type != "none") {
    NANOVLLM_CHECK(*type == "linear", src, ": metadata key '", a, ".rope.scaling.type' = \"", *type,
                   "\" is not supported (supported: none, linear)");
    RopeScaling r;
    r.type = "linear";
    r.factor = f.get_float(a + ".rope.scaling.factor").value_or(1.0);
    c.rope_scaling = r;
  }
  NANOVLLM_CHECK(f.find_tensor("rope_freqs.weight") == nullptr, src,
                 ": tensor 'rope_freqs.weight' (llama3-style rope scaling) is not supported");

  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  NANOVLLM_CHECK(embd != nullptr, src, ": tensor 'token_embd.weight' is missing");
  NANOVLLM_CHECK(embd->dims.size() == 2, src, ": tensor 'token_embd.weight' must have 2 dimensions");
  NANOVLLM_CHECK(embd->dims[1] > 0 && embd->dims[1] <= INT32_MAX, src, ": tensor 'token_embd.weight' dims ",
                 shape_string(embd->dims), " are out of range");
  c.vocab_size = int32_t(embd->dims[1]);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.qk_norm = c.arch == Architecture::Qwen3;
  c.attention_bias = c.arch == Architecture::Qwen2 || f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.attention_out_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;

  // Compute dtype: F32 when every tensor is F32, F16 when the file holds F16 but no BF16, else BF16.
  bool all_f32 = true, any_f16 = false, any_bf16 = false;
  for (const auto& t : f.tensors()) {
    all_f32 &= t.type == uint32_t(GgmlType::F32);
    any_f16 |= t.type == uint32_t(GgmlType::F16);
    any_bf16 |= t.type == uint32_t(GgmlType::BF16);
  }
  c.torch_dtype = all_f32 ? DType::F32 : (any_f16 && !any_bf16 ? DType::F16 : DType::BF16);

  if (auto bos = f.get_int("tokenizer.ggml.bos_token_id")) c.bos_token_id = int32_t(*bos);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (auto id = f.get_int(key)) {
      if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), int32_t(*id)) == c.eos_token_ids.end())
        c.eos_token_ids.push_back(int32_t(*id));
    }
  }
  validate_model_config(c, src);
  for (int32_t id : c.eos_token_ids) {
    NANOVLLM_CHECK(id >= 0 && id < c.vocab_size, src, ": eos token id ", id, " is outside the vocabulary (",
                   c.vocab_size, ")");
  }
  return c;
}

GgufModel open_gguf_model(const std::filesystem::path& path) {
  GgufModel m;
  m.file = std::make_shared<const GgufFile>(path);
  m.config = gguf_model_config(*m.file);
  m.weights = std::make_unique<GgufWeights>(m.file, m.config);
  return m;
}

}  // namespace nanovllm
