#include "model/model_config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace nanovllm {
namespace {

using nlohmann::json;

constexpr const char* kSupported = "LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM";

std::optional<Architecture> architecture_from_class(std::string_view name) {
  if (name == "LlamaForCausalLM") return Architecture::Llama;
  if (name == "Qwen2ForCausalLM") return Architecture::Qwen2;
  if (name == "Qwen3ForCausalLM") return Architecture::Qwen3;
  return std::nullopt;
}

std::optional<Architecture> architecture_from_model_type(std::string_view type) {
  if (type == "llama") return Architecture::Llama;
  if (type == "qwen2") return Architecture::Qwen2;
  if (type == "qwen3") return Architecture::Qwen3;
  return std::nullopt;
}

bool present(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

int32_t get_int(const json& j, const char* key, const std::string& src, std::optional<int32_t> fallback = {}) {
  if (!present(j, key)) {
    NANOVLLM_CHECK(fallback.has_value(), src, ": field '", key, "' is missing (expected an integer)");
    return *fallback;
  }
  const json& v = j.at(key);
  NANOVLLM_CHECK(v.is_number_integer(), src, ": field '", key, "' must be an integer, got ", v.dump());
  int64_t x = v.get<int64_t>();
  NANOVLLM_CHECK(x >= std::numeric_limits<int32_t>::min() && x <= std::numeric_limits<int32_t>::max(), src,
                 ": field '", key, "' = ", x, " is out of the int32 range");
  return int32_t(x);
}

double get_number(const json& j, const char* key, const std::string& src, double fallback) {
  if (!present(j, key)) return fallback;
  const json& v = j.at(key);
  NANOVLLM_CHECK(v.is_number(), src, ": field '", key, "' must be a number, got ", v.dump());
  double x = v.get<double>();
  NANOVLLM_CHECK(std::isfinite(x), src, ": field '", key, "' must be finite");
  return x;
}

bool get_bool(const json& j, const char* key, const std::string& src, bool fallback) {
  if (!present(j, key)) return fallback;
  const json& v = j.at(key);
  NANOVLLM_CHECK(v.is_boolean(), src, ": field '", key, "' must be true or false, got ", v.dump());
  return v.get<bool>();
}

std::vector<int32_t> token_id_list(const json& v, const char* key, const std::string& src) {
  std::vector<int32_t> ids;
  auto add = [&](const json& x) {
    NANOVLLM_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() <= INT32_MAX, src,
                   ": field '", key, "' must hold non-negative integer token ids, got ", x.dump());
    ids.push_back(int32_t(x.get<int64_t>()));
  };
  if (v.is_null()) return ids;
  if (v.is_array()) {
    for (const json& x : v) add(x);
  } else {
    add(v);
  }
  return ids;
}

Architecture parse_architecture(const json& j, const std::string& src, std::string& written) {
  if (present(j, "architectures")) {
    const json& a = j.at("architectures");
    NANOVLLM_CHECK(a.is_array() && !a.empty(), src, ": field 'architectures' must be a non-empty list, got ",
                   a.dump(), " (supported: ", kSupported, ")");
    for (const json& name : a) {
      if (!name.is_string()) continue;
      if (auto arch = architecture_from_class(name.get<std::string>())) {
        written = name.get<std::string>();
        return *arch;
      }
    }
    throw_error(src, ": field 'architectures' = ", a.dump(), " names no supported architecture (supported: ",
                kSupported, ")");
  }
  if (present(j, "model_type") && j.at("model_type").is_string()) {
    if (auto arch = architecture_from_model_type(j.at("model_type").get<std::string>())) {
      written = std::string(architecture_name(*arch));
      return *arch;
    }
  }
  throw_error(src, ": field 'architectures' is missing and 'model_type' is not llama/qwen2/qwen3 (supported: ",
              kSupported, ")");
}

// transformers 4 writes rope_theta + rope_scaling; transformers 5 writes rope_parameters holding
// both. Either may be present.
void parse_rope(const json& j, const std::string& src, ModelConfig& c) {
  c.rope_theta = get_number(j, "rope_theta", src, 10000.0);
  const json* scaling = nullptr;
  const char* field = "rope_scaling";
  if (present(j, "rope_scaling")) {
    scaling = &j.at("rope_scaling");
  } else if (present(j, "rope_parameters")) {
    field = "rope_parameters";
    scaling = &j.at("rope_parameters");
  }
  if (!scaling) return;
  NANOVLLM_CHECK(scaling->is_object(), src, ": field '", field, "' must be an object or null");
  c.rope_theta = get_number(*scaling, "rope_theta", src + " " + field, c.rope_theta);
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (present(*scaling, key)) {
      NANOVLLM_CHECK(scaling->at(key).is_string(), src, ": field '", field, ".", key, "' must be a string");
      type = scaling->at(key).get<std::string>();
      break;
    }
  }
  if (type == "default") return;
  NANOVLLM_CHECK(type == "llama3" || type == "linear", src, ": field '", field, ".rope_type' = \"", type,
                 "\" is not supported (supported: default, linear, llama3)");
  const std::string sub = src + " " + field;
  RopeScaling r;
  r.type = type;
  r.factor = get_number(*scaling, "factor", sub, 1.0);
  NANOVLLM_CHECK(r.factor > 0, src, ": field '", field, ".factor' must be positive");
  if (type == "llama3") {
    r.low_freq_factor = get_number(*scaling, "low_freq_factor", sub, r.low_freq_factor);
    r.high_freq_factor = get_number(*scaling, "high_freq_factor", sub, r.high_freq_factor);
    r.original_max_position_embeddings =
        get_int(*scaling, "original_max_position_embeddings", sub, int32_t(r.original_max_position_embeddings));
    NANOVLLM_CHECK(r.high_freq_factor > r.low_freq_factor && r.low_freq_factor > 0, src, ": field '", field,
                   "': llama3 needs high_freq_factor > low_freq_factor > 0");
    NANOVLLM_CHECK(r.original_max_position_embeddings > 0, src, ": field '", field,
                   ".original_max_position_embeddings' must be positive");
  }
  c.rope_scaling = r;
}

DType parse_dtype(const json& j, const std::string& src) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (!present(j, key)) continue;
    const json& v = j.at(key);
    NANOVLLM_CHECK(v.is_string(), src, ": field '", key, "' must be a string");
    auto t = parse_float_dtype(v.get<std::string>());
    NANOVLLM_CHECK(t.has_value(), src, ": field '", key, "' = \"", v.get<std::string>(),
                   "\" is not supported (supported: float32, float16, bfloat16)");
    return *t;
  }
  return DType::F32;
}

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  NANOVLLM_CHECK(in.good(), path.string(), ": cannot open the file");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  NANOVLLM_CHECK(!j.is_discarded(), path.string(), ": not valid JSON");
  NANOVLLM_CHECK(j.is_object(), path.string(), ": expected a JSON object at the top level");
  return j;
}

}  // namespace

std::string_view architecture_name(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "LlamaForCausalLM";
    case Architecture::Qwen2: return "Qwen2ForCausalLM";
    case Architecture::Qwen3: return "Qwen3ForCausalLM";
  }
  return "?";
}

ModelConfig parse_model_config(const json& j, const std::string& src) {
  NANOVLLM_CHECK(j.is_object(), src, ": expected a JSON object");
  ModelConfig c;
  c.arch = parse_architecture(j, src, c.architecture_name);
  c.hidden_size = get_int(j, "hidden_size", src);
  c.intermediate_size = get_int(j, "intermediate_size", src);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", src);
  c.num_attention_heads = get_int(j, "num_attention_heads", src);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", src, c.num_attention_heads);
  NANOVLLM_CHECK(c.num_attention_heads > 0, src, ": field 'num_attention_heads' must be positive, got ",
                 c.num_attention_heads);
  c.head_dim = get_int(j, "head_dim", src, c.hidden_size / c.num_attention_heads);
  c.vocab_size = get_int(j, "vocab_size", src);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", src);
  c.rms_norm_eps = float(get_number(j, "rms_norm_eps", src, 1e-6));
  parse_rope(j, src, c);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", src, false);
  c.qk_norm = c.arch == Architecture::Qwen3;
  if (c.arch == Architecture::Qwen2) {
    c.attention_bias = true;  // Qwen2's q/k/v projections always carry a bias, o_proj never
  } else {
    c.attention_bias = get_bool(j, "attention_bias", src, false);
    c.attention_out_bias = c.attention_bias;
  }
  NANOVLLM_CHECK(!get_bool(j, "mlp_bias", src, false), src, ": field 'mlp_bias' = true is not supported");
  NANOVLLM_CHECK(!get_bool(j, "use_sliding_window", src, false), src,
                 ": field 'use_sliding_window' = true is not supported");
  if (present(j, "hidden_act")) {
    const json& act = j.at("hidden_act");
    NANOVLLM_CHECK(act.is_string() && act.get<std::string>() == "silu", src, ": field 'hidden_act' = ",
                   act.dump(), " is not supported (supported: \"silu\")");
  }
  c.torch_dtype = parse_dtype(j, src);
  if (present(j, "bos_token_id")) {
    auto bos = token_id_list(j.at("bos_token_id"), "bos_token_id", src);
    NANOVLLM_CHECK(bos.size() == 1, src, ": field 'bos_token_id' must be one token id");
    c.bos_token_id = bos[0];
  }
  if (present(j, "eos_token_id")) c.eos_token_ids = token_id_list(j.at("eos_token_id"), "eos_token_id", src);
  validate_model_config(c, src);
  return c;
}

void validate_model_config(const ModelConfig& c, const std::string& src) {
  auto positive = [&](int64_t v, const char* field) {
    NANOVLLM_CHECK(v > 0, src, ": field '", field, "' must be positive, got ", v);
  };
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_hidden_layers, "num_hidden_layers");
  positive(c.num_attention_heads, "num_attention_heads");
  positive(c.num_key_value_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.vocab_size, "vocab_size");
  positive(c.max_position_embeddings, "max_position_embeddings");
  NANOVLLM_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, src, ": field 'num_key_value_heads' = ",
                 c.num_key_value_heads, " must divide num_attention_heads = ", c.num_attention_heads);
  NANOVLLM_CHECK(c.head_dim % 2 == 0, src, ": field 'head_dim' = ", c.head_dim, " must be even for RoPE");
  NANOVLLM_CHECK(c.rms_norm_eps > 0, src, ": field 'rms_norm_eps' must be positive");
  NANOVLLM_CHECK(c.rope_theta > 0, src, ": field 'rope_theta' must be positive");
  NANOVLLM_CHECK(c.bos_token_id < c.vocab_size, src, ": field 'bos_token_id' = ", c.bos_token_id,
                 " is not below vocab_size = ", c.vocab_size);
}

ModelConfig load_model_config(const std::filesystem::path& config_json) {
  return parse_model_config(read_json_file(config_json), config_json.string());
}

void merge_generation_config(ModelConfig& c, const std::filesystem::path& model_dir) {
  const auto path = model_dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return;
  json j = read_json_file(path);
  if (c.bos_token_id < 0 && present(j, "bos_token_id")) {
    auto bos = token_id_list(j.at("bos_token_id"), "bos_token_id", path.string());
    if (bos.size() == 1) c.bos_token_id = bos[0];
  }
  auto number = [&](const char* field) -> std::optional<double> {
    if (!present(j, field)) return std::nullopt;
    NANOVLLM_CHECK(j.at(field).is_number(), path.string(), ": field '", field, "' must be a number");
    return j.at(field).get<double>();
  };
  if (auto t = number("temperature")) {
    NANOVLLM_CHECK(*t >= 0, path.string(), ": field 'temperature' = ", *t, "; expected >= 0");
    c.default_temperature = float(*t);
  }
  if (auto p = number("top_p")) {
    NANOVLLM_CHECK(*p > 0 && *p <= 1, path.string(), ": field 'top_p' = ", *p, "; expected (0, 1]");
    c.default_top_p = float(*p);
  }
  if (auto k = number("top_k")) c.default_top_k = *k > 0 ? int32_t(*k) : -1;
  if (present(j, "do_sample") && j.at("do_sample").is_boolean() && !j.at("do_sample").get<bool>())
    c.default_temperature = 0.0f;
  if (!present(j, "eos_token_id")) return;
  for (int32_t id : token_id_list(j.at("eos_token_id"), "eos_token_id", path.string())) {
    bool known = false;
    for (int32_t e : c.eos_token_ids) known |= e == id;
    if (!known) c.eos_token_ids.push_back(id);
  }
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> out(static_cast<size_t>(half));
  const double pi = 3.14159265358979323846;
  for (int i = 0; i < half; ++i) {
    double inv = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(c.head_dim));
    if (c.rope_scaling && c.rope_scaling->type == "linear") {
      inv /= c.rope_scaling->factor;
    } else if (c.rope_scaling && c.rope_scaling->type == "llama3") {
      const RopeScaling& r = *c.rope_scaling;
      const double old_len = double(r.original_max_position_embeddings);
      const double low_freq_wavelen = old_len / r.low_freq_factor;
      const double high_freq_wavelen = old_len / r.high_freq_factor;
      const double wavelen = 2 * pi / inv;
      if (wavelen > low_freq_wavelen) {
        inv /= r.factor;  // long wavelengths: fully interpolated
      } else if (wavelen >= high_freq_wavelen) {
        // medium band: blend between interpolated and original frequencies
        const double smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        inv = (1 - smooth) * inv / r.factor + smooth * inv;
      }
    }
    out[size_t(i)] = float(inv);
  }
  return out;
}

}  // namespace nanovllm
