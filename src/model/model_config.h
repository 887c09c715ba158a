#pragma once
// The model hyperparameters the engine needs, read from a Hugging Face config.json (or a GGUF
// file's metadata, or a built-in preset).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"

namespace nanovllm {

enum class Architecture { Llama, Qwen2, Qwen3 };

std::string_view architecture_name(Architecture a);  // "LlamaForCausalLM", ...

// RoPE frequency scaling; `type` is "llama3" or "linear" (absent scaling is std::nullopt).
struct RopeScaling {
  std::string type;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture_name;  // as written, e.g. "Qwen3ForCausalLM"
  Architecture arch = Architecture::Llama;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_hidden_layers = 0;
  int32_t num_attention_heads = 0;
  int32_t num_key_value_heads = 0;
  int32_t head_dim = 0;
  int32_t vocab_size = 0;
  int32_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;      // q/k/v projections have a bias (Qwen2: always)
  bool attention_out_bias = false;  // o_proj has a bias (Llama/Qwen3 with attention_bias)
  bool qk_norm = false;             // Qwen3: per-head RMSNorm on q and k before RoPE
  DType torch_dtype = DType::F32;   // F32 / F16 / BF16
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
  // generation_config.json's sampling defaults, used where a request does not say (as vLLM does).
  std::optional<float> default_temperature, default_top_p;
  std::optional<int32_t> default_top_k;
};

// Reads and validates config.json; errors name the file and the field.
ModelConfig load_model_config(const std::filesystem::path& config_json);
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source_name);
// Adds generation_config.json's eos_token_id (int or list) to eos_token_ids and takes its sampling
// defaults (temperature, top_p, top_k; do_sample false means greedy), when the file exists.
void merge_generation_config(ModelConfig& config, const std::filesystem::path& model_dir);
// Throws Error (prefixed by source_name) when sizes are missing, non-positive or inconsistent.
void validate_model_config(const ModelConfig& c, const std::string& source_name);

// Built-in configs: "qwen3-0.6b" (Qwen/Qwen3-0.6B exactly), "qwen3-tiny", "llama-tiny".
std::optional<ModelConfig> preset_config(std::string_view name);
std::vector<std::string> preset_names();

// RoPE inverse frequencies, [head_dim / 2]: theta^(-2i/head_dim), with linear or llama3 scaling
// applied as transformers computes it.
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace nanovllm
