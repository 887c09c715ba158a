#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model_config.h"
#include "model_test_util.h"

namespace nanovllm {
namespace {

using nlohmann::json;
using testing_util::ScratchDir;
using testing_util::write_text;

json qwen3_json() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 96,
    "intermediate_size": 200, "num_hidden_layers": 3, "num_attention_heads": 6, "num_key_value_heads": 2,
    "head_dim": 32, "vocab_size": 777, "max_position_embeddings": 4096, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000, "rope_scaling": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "attention_bias": false, "bos_token_id": 5, "eos_token_id": 6, "hidden_act": "silu"})");
}

// Expects parse to throw an Error whose message contains every one of `parts`.
void expect_error(const json& j, std::initializer_list<const char*> parts) {
  try {
    parse_model_config(j, "some/dir/config.json");
    FAIL() << "no error for " << j.dump();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(ModelConfig, ParsesQwen3) {
  ModelConfig c = parse_model_config(qwen3_json(), "config.json");
  EXPECT_EQ(c.arch, Architecture::Qwen3);
  EXPECT_EQ(c.architecture_name, "Qwen3ForCausalLM");
  EXPECT_EQ(c.hidden_size, 96);
  EXPECT_EQ(c.intermediate_size, 200);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 32);  // explicit, not hidden / heads (16)
  EXPECT_EQ(c.vocab_size, 777);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_FALSE(c.rope_scaling.has_value());
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.torch_dtype, DType::BF16);
  EXPECT_EQ(c.bos_token_id, 5);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{6});
}

TEST(ModelConfig, DefaultsHeadDimKvHeadsAndQwen2Bias) {
  json j = qwen3_json();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j.erase("head_dim");
  j.erase("num_key_value_heads");
  j.erase("attention_bias");
  j.erase("torch_dtype");
  j["eos_token_id"] = {6, 9};
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.arch, Architecture::Qwen2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 6);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.torch_dtype, DType::F32);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{6, 9}));
}

TEST(ModelConfig, Transformers5RopeParametersAndDtype) {
  json j = qwen3_json();
  j["architectures"] = {"LlamaForCausalLM"};
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("torch_dtype");
  j["dtype"] = "float16";
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 32.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.torch_dtype, DType::F16);
  EXPECT_EQ(c.rope_theta, 500000.0);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->type, "llama3");
  EXPECT_EQ(c.rope_scaling->factor, 32.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);

  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 20000.0}};
  c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.rope_theta, 20000.0);
  EXPECT_FALSE(c.rope_scaling.has_value());
}

TEST(ModelConfig, ModelTypeWhenArchitecturesAbsent) {
  json j = qwen3_json();
  j.erase("architectures");
  EXPECT_EQ(parse_model_config(j, "config.json").arch, Architecture::Qwen3);
}

TEST(ModelConfig, ErrorsNameFileAndField) {
  json j = qwen3_json();
  j["architectures"] = {"MistralForCausalLM"};
  expect_error(j, {"some/dir/config.json", "architectures", "MistralForCausalLM", "Qwen3ForCausalLM",
                   "LlamaForCausalLM", "Qwen2ForCausalLM"});
  j = qwen3_json();
  j.erase("hidden_size");
  expect_error(j, {"some/dir/config.json", "hidden_size", "missing"});
  j = qwen3_json();
  j["num_hidden_layers"] = "28";
  expect_error(j, {"config.json", "num_hidden_layers", "integer"});
  j = qwen3_json();
  j["num_key_value_heads"] = 4;  // 6 % 4 != 0
  expect_error(j, {"config.json", "num_key_value_heads"});
  j = qwen3_json();
  j["torch_dtype"] = "int8";
  expect_error(j, {"config.json", "torch_dtype", "int8"});
  j = qwen3_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(j, {"config.json", "rope_scaling", "yarn"});
  j = qwen3_json();
  j["vocab_size"] = 0;
  expect_error(j, {"config.json", "vocab_size", "positive"});
  j = qwen3_json();
  j["hidden_act"] = "gelu";
  expect_error(j, {"config.json", "hidden_act", "gelu"});
  j = qwen3_json();
  j["eos_token_id"] = {6, -1};
  expect_error(j, {"config.json", "eos_token_id"});
  j = qwen3_json();
  j["max_position_embeddings"] = 1e12;
  expect_error(j, {"config.json", "max_position_embeddings"});
}

TEST(ModelConfig, LoadFileErrors) {
  ScratchDir dir;
  EXPECT_THROW(load_model_config(dir / "config.json"), Error);
  write_text(dir / "config.json", "{\"hidden_size\": 3,");
  try {
    load_model_config(dir / "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string()), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, MergesGenerationConfigEos) {
  ScratchDir dir;
  write_text(dir / "config.json", qwen3_json().dump());
  write_text(dir / "generation_config.json", R"({"bos_token_id": 5, "eos_token_id": [7, 6, 8]})");
  ModelConfig c = load_model_config(dir / "config.json");
  merge_generation_config(c, dir.path());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{6, 7, 8}));
  write_text(dir / "generation_config.json", R"({"eos_token_id": 11})");
  merge_generation_config(c, dir.path());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{6, 7, 8, 11}));
}

TEST(ModelConfig, StoriesConfig) {
  const std::string dir = std::string(NANOVLLM_SHARED_DIR) + "/models/stories260K";
  ModelConfig c = load_model_config(dir + "/config.json");
  merge_generation_config(c, dir);
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, DType::F32);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
}

TEST(ModelConfig, PresetQwen3_0_6bIsTheHubConfig) {
  auto c = preset_config("qwen3-0.6b");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->arch, Architecture::Qwen3);
  EXPECT_EQ(c->architecture_name, "Qwen3ForCausalLM");
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 16);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_EQ(c->rope_theta, 1000000.0);
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_FLOAT_EQ(c->rms_norm_eps, 1e-6f);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_EQ(c->torch_dtype, DType::BF16);
  EXPECT_EQ(c->bos_token_id, 151643);
  ASSERT_FALSE(c->eos_token_ids.empty());
  EXPECT_EQ(c->eos_token_ids[0], 151645);
}

TEST(ModelConfig, EveryPresetIsValid) {
  for (const auto& name : preset_names()) {
    auto c = preset_config(name);
    ASSERT_TRUE(c.has_value()) << name;
    EXPECT_NO_THROW(validate_model_config(*c, name));
  }
  EXPECT_EQ(preset_config("qwen3-tiny")->vocab_size, 151936);
  EXPECT_EQ(preset_config("llama-tiny")->arch, Architecture::Llama);
  EXPECT_FALSE(preset_config("gpt2").has_value());
}

TEST(RopeInvFreq, MatchesDirectFormula) {
  ModelConfig c = *preset_config("qwen3-0.6b");
  c.head_dim = 126;  // odd half
  auto inv = rope_inv_freq(c);
  ASSERT_EQ(inv.size(), 63u);
  for (int i = 0; i < 63; ++i) {
    const double expect = std::exp(-std::log(1e6) * (2.0 * i) / 126.0);
    EXPECT_NEAR(inv[size_t(i)], expect, 1e-7 * expect) << i;
  }
  c.rope_scaling = RopeScaling{"linear", 4.0};
  auto lin = rope_inv_freq(c);
  for (int i = 0; i < 63; ++i) EXPECT_NEAR(lin[size_t(i)], inv[size_t(i)] / 4.0, 1e-7 * inv[size_t(i)]);
}

// transformers' _compute_llama3_parameters, written out element by element.
TEST(RopeInvFreq, Llama3ScalingAsTransformers) {
  ModelConfig c = *preset_config("llama-tiny");
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling = RopeScaling{"llama3", 32.0, 1.0, 4.0, 8192};
  auto got = rope_inv_freq(c);
  ASSERT_EQ(got.size(), 64u);
  const double factor = 32, low = 1, high = 4, old_len = 8192;
  const double low_freq_wavelen = old_len / low, high_freq_wavelen = old_len / high;
  int scaled = 0, smoothed = 0, kept = 0;
  for (int i = 0; i < 64; ++i) {
    const double inv = 1.0 / std::pow(500000.0, double(2 * i) / 128.0);
    const double wavelen = 2 * M_PI / inv;
    double llama = wavelen > low_freq_wavelen ? inv / factor : inv;
    const double smooth_factor = (old_len / wavelen - low) / (high - low);
    const double smoothed_inv = (1 - smooth_factor) * llama / factor + smooth_factor * llama;
    const bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    const double expect = is_medium ? smoothed_inv : llama;
    EXPECT_NEAR(got[size_t(i)], expect, 1e-6 * expect) << i;
    scaled += wavelen > low_freq_wavelen;
    smoothed += is_medium;
    kept += wavelen < high_freq_wavelen;
  }
  // All three bands are exercised.
  EXPECT_GT(scaled, 0);
  EXPECT_GT(smoothed, 0);
  EXPECT_GT(kept, 0);
}

}  // namespace
}  // namespace nanovllm
