#pragma once
#include <filesystem>
#include <memory>

#include "model/weight_source.h"

namespace nanovllm {

// Weights of a Hugging Face folder: `model.safetensors`, or the shards that
// `model.safetensors.index.json` lists in its weight_map. Files are memory-mapped.
std::unique_ptr<WeightSource> open_safetensors_folder(const std::filesystem::path& dir);

}  // namespace nanovllm
