#pragma once
// Where a model's weights come from (a safetensors folder, a GGUF file, or a seeded generator),
// asked for by Hugging Face tensor name ("model.layers.0.self_attn.q_proj.weight").
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nanovllm {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool contains(const std::string& name) const = 0;
  // Row-major float32 values of tensor `name` (HF shape, e.g. [out_features, in_features]).
  // Throws Error naming the file and tensor when it is missing or its shape is not expected_shape.
  virtual std::vector<float> load_f32(const std::string& name, std::span<const int64_t> expected_shape) const = 0;
  virtual std::string describe() const = 0;  // e.g. the folder path
};

// "[1024, 3072]"
std::string shape_string(std::span<const int64_t> shape);

}  // namespace nanovllm
