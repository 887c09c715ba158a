// The CPU backend with BF16 matrices (CpuBackend::weight_dtype: a BF16 checkpoint's matrices stay
// BF16 and are widened as they are read): linear, linear_residual and embedding give what the
// same values stored as F32 give, through the one-row AVX2 path and the blocked path alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "core/error.h"
#include "core/half.h"

namespace nanovllm {
namespace {

using testing::host_tensor;
using testing::random_floats;
using testing::Rng;

// v rounded to BF16: the values both storages hold exactly.
std::vector<float> bf16_values(std::vector<float> v) {
  for (float& x : v) x = round_to_dtype(DType::BF16, x);
  return v;
}
std::vector<uint16_t> bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = float_to_bf16(v[i]);
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST(CpuBf16Weights, BackendKeepsBf16MatricesOnly) {
  CpuBackend be;
  EXPECT_EQ(be.activation_dtype(DType::BF16), DType::F32);
  EXPECT_EQ(be.weight_dtype(DType::BF16), DType::BF16);
  EXPECT_EQ(be.weight_dtype(DType::F32), DType::F32);
  EXPECT_EQ(be.weight_dtype(DType::F16), DType::F32);
}

TEST(CpuBf16Weights, LinearMatchesTheSameValuesInF32) {
  CpuBackend be;
  struct Shape { int64_t T, K, N; };
  // T = 1: the one-row path; 2 <= T <= 8: the few-rows path (both AVX2 where the CPU has it; K
  // not a multiple of 8 or 16 included); T > 8: blocks widened into a buffer (N across several
  // blocks and a partial one).
  for (Shape s : {Shape{1, 1024, 300}, Shape{1, 37, 5}, Shape{1, 8, 64}, Shape{1, 100, 1000},
                  Shape{3, 1024, 300}, Shape{70, 96, 129}, Shape{2, 4096, 17}, Shape{8, 37, 65},
                  Shape{5, 200, 130}, Shape{9, 64, 33}}) {
    for (bool accumulate : {false, true}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE("T=" + std::to_string(s.T) + " K=" + std::to_string(s.K) + " N=" +
                     std::to_string(s.N) + (accumulate ? " accumulate" : "") +
                     (with_bias ? " bias" : ""));
        Rng rng(uint64_t(s.T * 1000 + s.K * 7 + s.N) + accumulate * 2 + with_bias);
        std::vector<float> x = random_floats(size_t(s.T * s.K), rng);
        std::vector<float> w = bf16_values(random_floats(size_t(s.N * s.K), rng, -0.1f, 0.1f));
        std::vector<uint16_t> wb = bf16_bits(w);
        std::vector<float> b = random_floats(size_t(s.N), rng);
        std::vector<float> r0 = random_floats(size_t(s.T * s.N), rng);
        Tensor bias = host_tensor(b, {s.N});
        Tensor w16(wb.data(), DType::BF16, Device::CPU, {s.N, s.K});
        std::vector<float> want = r0, got = r0;
        if (accumulate) {
          be.linear_residual(host_tensor(x, {s.T, s.K}), host_tensor(w, {s.N, s.K}),
                             with_bias ? &bias : nullptr, host_tensor(want, {s.T, s.N}));
          be.linear_residual(host_tensor(x, {s.T, s.K}), w16, with_bias ? &bias : nullptr,
                             host_tensor(got, {s.T, s.N}));
        } else {
          be.linear(host_tensor(x, {s.T, s.K}), host_tensor(w, {s.N, s.K}),
                    with_bias ? &bias : nullptr, host_tensor(want, {s.T, s.N}));
          be.linear(host_tensor(x, {s.T, s.K}), w16, with_bias ? &bias : nullptr,
                    host_tensor(got, {s.T, s.N}));
        }
        double scale = 1;
        for (float v : want) scale = std::max(scale, double(std::fabs(v)));
        // The same products in F32; only the order of the sums may differ.
        EXPECT_LT(max_abs_diff(got, want), 1e-5 * scale * std::sqrt(double(s.K)));
        if (!accumulate) {
          EXPECT_NE(max_abs_diff(got, r0), 0.0);  // written, not left alone
        }
      }
    }
  }
}

TEST(CpuBf16Weights, EmbeddingWidensTheRows) {
  CpuBackend be;
  Rng rng(5);
  const int64_t V = 50, H = 24;
  std::vector<float> table = bf16_values(random_floats(size_t(V * H), rng));
  std::vector<uint16_t> bits = bf16_bits(table);
  std::vector<int32_t> ids = {3, 49, 0, 3, 17};
  const int64_t T = int64_t(ids.size());
  std::vector<float> out(size_t(T * H), NAN);
  be.embedding(Tensor(ids.data(), DType::I32, Device::CPU, {T}),
               Tensor(bits.data(), DType::BF16, Device::CPU, {V, H}), host_tensor(out, {T, H}));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      EXPECT_EQ(out[size_t(t * H + h)], table[size_t(ids[size_t(t)] * H + h)]);
}

TEST(CpuBf16Weights, RejectsOtherNarrowWeights) {
  CpuBackend be;
  std::vector<float> x(8, 1.f), out(2);
  std::vector<uint16_t> w(8, 0);
  EXPECT_THROW(be.linear(host_tensor(x, {1, 4}), Tensor(w.data(), DType::F16, Device::CPU, {2, 4}),
                         nullptr, host_tensor(out, {1, 2})),
               Error);
}

}  // namespace
}  // namespace nanovllm
