#include "model/dummy_weights.h"

#include <cmath>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "core/half.h"
#include "core/random.h"
#include "model/tensor_names.h"

namespace nanovllm {
namespace {

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

class DummyWeights final : public WeightSource {
 public:
  DummyWeights(uint64_t seed, std::optional<std::unordered_set<std::string>> names, DType dtype)
      : seed_(seed), names_(std::move(names)), dtype_(dtype) {}

  bool contains(const std::string& name) const override { return !names_ || names_->count(name) > 0; }

  std::vector<float> load_f32(const std::string& name, std::span<const int64_t> shape) const override {
    NANOVLLM_CHECK(contains(name), describe(), ": tensor '", name, "' not found");
    int64_t n = 1;
    for (int64_t d : shape) {
      NANOVLLM_CHECK(d >= 0, describe(), ": tensor '", name, "' asked with negative shape ", shape_string(shape));
      n *= d;
    }
    float center = 0.f, half_width;
    if (ends_with(name, "norm.weight")) {
      center = 1.f;
      half_width = 0.05f;
    } else if (ends_with(name, ".bias")) {
      half_width = 0.02f;
    } else {
      const int64_t fan_in = shape.empty() ? 1 : std::max<int64_t>(shape.back(), 1);
      half_width = float(1.0 / std::sqrt(double(fan_in)));
    }
    const uint64_t key = splitmix64(seed_ ^ fnv1a64(name));
    std::vector<float> out(static_cast<size_t>(n));
    float* dst = out.data();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t r = splitmix64(key + uint64_t(i) * 0x9e3779b97f4a7c15ull);
      const float u = float(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      dst[i] = round_to_dtype(dtype_, center + half_width * (2.f * u - 1.f));
    }
    return out;
  }

  std::string describe() const override { return "dummy weights (seed " + std::to_string(seed_) + ")"; }

 private:
  uint64_t seed_;
  std::optional<std::unordered_set<std::string>> names_;
  DType dtype_;  // values are rounded to it, as a checkpoint of that dtype holds them
};

}  // namespace

std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed) {
  return std::make_unique<DummyWeights>(seed, std::nullopt, DType::F32);
}

std::unique_ptr<WeightSource> make_dummy_weights(uint64_t seed, const ModelConfig& config) {
  std::unordered_set<std::string> names;
  for (const auto& spec : model_tensor_specs(config)) names.insert(spec.name);
  return std::make_unique<DummyWeights>(seed, std::move(names), config.torch_dtype);
}

}  // namespace nanovllm
