// The CPU backend's products with BF16 weights in isolation: the four of a Qwen3-0.6B decoder
// layer (qkv 4096 x 1024, o_proj 1024 x 2048, gate_up 6144 x 1024, down 1024 x 3072) for 28
// layers, at T rows of activations (T = 1: one sequence decoding; 2-8: a few decoding together;
// more: prefill chunks). Random weights and inputs; prints the best of 5 timings per T.
// Usage: cpu_linear_bench [T ...]   (default 1 2 4 8 16)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/half.h"

int main(int argc, char** argv) {
  using namespace nanovllm;
  std::vector<int64_t> rows;
  for (int i = 1; i < argc; ++i) rows.push_back(std::max(1, std::atoi(argv[i])));
  if (rows.empty()) rows = {1, 2, 4, 8, 16};
  struct Shape {
    int64_t N, K;
  };
  constexpr Shape kShapes[] = {{4096, 1024}, {1024, 2048}, {6144, 1024}, {1024, 3072}};
  constexpr int kLayers = 28, kReps = 5;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<std::vector<uint16_t>> weights;  // [4][N * K] BF16
  for (const Shape& s : kShapes) {
    std::vector<uint16_t> w(size_t(s.N * s.K));
    for (uint16_t& v : w) v = float_to_bf16(0.05f * normal(rng));
    weights.push_back(std::move(w));
  }
  for (int64_t T : rows) {
    std::vector<std::vector<float>> x, out;  // [4][T * K], [4][T * N]
    for (const Shape& s : kShapes) {
      x.emplace_back(size_t(T * s.K));
      for (float& v : x.back()) v = normal(rng);
      out.emplace_back(size_t(T * s.N));
    }
    double best = 1e30;
    for (int r = 0; r < kReps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int l = 0; l < kLayers; ++l)
        for (size_t i = 0; i < std::size(kShapes); ++i) {
          const Shape& s = kShapes[i];
          cpu::linear(Tensor(x[i].data(), DType::F32, Device::CPU, {T, s.K}),
                      Tensor(weights[i].data(), DType::BF16, Device::CPU, {s.N, s.K}), nullptr,
                      Tensor(out[i].data(), DType::F32, Device::CPU, {T, s.N}));
        }
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("T %3ld: %9.2f ms for %d layers' four products (%.2f ms a row)\n", long(T), best,
                kLayers, best / double(T));
  }
  return 0;
}
