#pragma once
// The Hugging Face tensors a config's model has, with their shapes: what a loader must find.
#include <cstdint>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace nanovllm {

struct TensorSpec {
  std::string name;            // e.g. "model.layers.3.mlp.up_proj.weight"
  std::vector<int64_t> shape;  // HF (PyTorch) order: [out_features, in_features] for Linear
};

// Every tensor of the model, in layer order; lm_head.weight only when embeddings are not tied.
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& c);

}  // namespace nanovllm
