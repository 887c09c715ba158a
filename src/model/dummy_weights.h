#pragma once
#include <cstdint>
#include <memory>

#include "model/model_config.h"
#include "model/weight_source.h"

namespace nanovllm {

// Seeded random weights: each tensor's values are a pure function of (seed, tensor name, index),
// so they do not depend on load order. Names ending in "norm.weight" get 1 + uniform(-0.05, 0.05),
// ".bias" uniform(-0.02, 0.02), everything else uniform(-a, a) with a = 1/sqrt(last dim).
// This source contains() every name.
std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed);
// The same values rounded to config.torch_dtype (as a checkpoint of that dtype stores them; the
// identity for F32), and contains() only the tensors `config`'s model has (model_tensor_specs).
std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed, const ModelConfig& config);

}  // namespace nanovllm
