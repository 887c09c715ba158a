#include "model/model_source.h"

#include "core/error.h"
#include "model/dummy_weights.h"
#include "model/gguf_weights.h"
#include "model/safetensors_weights.h"

namespace nanovllm {
namespace {

std::string joined_presets() {
  std::string s;
  for (const auto& p : preset_names()) s += (s.empty() ? "" : ", ") + p;
  return s;
}

}  // namespace

LoadedModel open_model(const std::string& model_path, const std::string& preset, const std::string& load_format,
                       uint64_t dummy_seed) {
  NANOVLLM_CHECK(load_format == "auto" || load_format == "dummy", "load_format '", load_format,
                 "' is not supported (supported: auto, dummy)");
  const bool dummy = load_format == "dummy";
  LoadedModel m;
  if (model_path.empty()) {
    NANOVLLM_CHECK(!preset.empty(), "no model given: pass a model folder, a .gguf file or a preset (",
                   joined_presets(), ")");
    auto config = preset_config(preset);
    NANOVLLM_CHECK(config.has_value(), "preset '", preset, "' is unknown (available: ", joined_presets(), ")");
    m.config = *config;
    m.weights = make_dummy_weights(dummy_seed, m.config);
    return m;
  }
  NANOVLLM_CHECK(preset.empty(), "give either a model path ('", model_path, "') or a preset ('", preset,
                 "'), not both");
  const std::filesystem::path path(model_path);
  NANOVLLM_CHECK(std::filesystem::exists(path), path.string(), ": no such file or folder");
  if (std::filesystem::is_directory(path)) {
    const auto config_json = path / "config.json";
    NANOVLLM_CHECK(std::filesystem::exists(config_json), path.string(),
                   ": config.json is missing (expected a Hugging Face model folder)");
    m.config = load_model_config(config_json);
    merge_generation_config(m.config, path);
    m.weights = dummy ? make_dummy_weights(dummy_seed, m.config) : open_safetensors_folder(path);
    m.tokenizer_dir_or_file = path;
    return m;
  }
  NANOVLLM_CHECK(path.extension() == ".gguf", path.string(),
                 ": not a model folder or a .gguf file (expected a folder with config.json, or FILE.gguf)");
  GgufModel gguf = open_gguf_model(path);
  m.config = gguf.config;
  m.weights = dummy ? make_dummy_weights(dummy_seed, m.config) : std::move(gguf.weights);
  m.tokenizer_dir_or_file = path;
  return m;
}

}  // namespace nanovllm
