#pragma once
// Resolves what the user asked to run (a Hugging Face folder, a .gguf file, or a built-in preset)
// into a config, a weight source and where the tokenizer lives.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "model/model_config.h"
#include "model/weight_source.h"

namespace nanovllm {

struct LoadedModel {
  ModelConfig config;
  std::unique_ptr<WeightSource> weights;
  // The HF folder (tokenizer.json inside), the .gguf file (tokenizer.ggml.* metadata), or empty
  // for a preset.
  std::filesystem::path tokenizer_dir_or_file;
};

// model_path_or_empty: a folder with config.json (+ safetensors) or a .gguf file; empty means
// `preset` (then weights are always dummy). load_format: "auto" reads the weights, "dummy" keeps
// the config and fills weights from `dummy_seed`. Errors name the folder/file and what is missing.
LoadedModel open_model(const std::string& model_path_or_empty, const std::string& preset,
                       const std::string& load_format, uint64_t dummy_seed);

}  // namespace nanovllm
