#pragma once
// A GGUF file seen as a model: its config from `<arch>.*` metadata and its tensors under
// Hugging Face names, dequantized to float32 (and, for the llama architecture, with q/k rows
// un-permuted back to HF's rotate-half layout).
#include <filesystem>
#include <memory>

#include "model/gguf.h"
#include "model/model_config.h"
#include "model/weight_source.h"

namespace nanovllm {

struct GgufModel {
  ModelConfig config;
  std::unique_ptr<WeightSource> weights;
  std::shared_ptr<const GgufFile> file;  // raw metadata (tokenizer.ggml.*, chat template)
};

GgufModel open_gguf_model(const std::filesystem::path& path);
ModelConfig gguf_model_config(const GgufFile& file);
// The GGUF tensor name of an HF tensor name ("model.layers.3.mlp.up_proj.weight" ->
// "blk.3.ffn_up.weight"); nullopt when it has none.
std::optional<std::string> gguf_tensor_name(const std::string& hf_name);

}  // namespace nanovllm
