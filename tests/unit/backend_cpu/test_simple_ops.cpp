// embedding, rms_norm, silu_mul, gather_rows, linear, linear_residual and the fused ops
// (norm_linear, silu_mul_linear_residual) against double references.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "core/error.h"

namespace nanovllm {
namespace {

using testing::host_tensor;
using testing::random_floats;
using testing::Rng;

std::vector<double> reference_rms_norm(const std::vector<float>& x, const std::vector<float>& w,
                                       int64_t T, int64_t H, double eps) {
  std::vector<double> out(size_t(T * H));
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) ss += double(x[t * H + i]) * x[t * H + i];
    const double inv = 1.0 / std::sqrt(ss / H + eps);
    for (int64_t i = 0; i < H; ++i) out[t * H + i] = x[t * H + i] * inv * w[i];
  }
  return out;
}

TEST(CpuOps, Embedding) {
  CpuBackend be;
  Rng rng(1);
  for (int64_t T : {1, 7, 97}) {
    const int64_t V = 50, H = 33;
    std::vector<float> table = random_floats(V * H, rng);
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < T; ++t) ids.push_back(int32_t(rng.index(V)));
    std::vector<float> out(T * H, NAN);
    be.embedding(host_tensor(ids, {T}), host_tensor(table, {V, H}), host_tensor(out, {T, H}));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < H; ++i) ASSERT_EQ(out[t * H + i], table[ids[t] * H + i]);
    ids[0] = int32_t(V);
    EXPECT_THROW(be.embedding(host_tensor(ids, {T}), host_tensor(table, {V, H}),
                              host_tensor(out, {T, H})),
                 Error);
  }
}

TEST(CpuOps, RmsNorm) {
  CpuBackend be;
  Rng rng(2);
  for (int64_t T : {1, 7, 97}) {
    for (int64_t H : {1, 64, 1025}) {
      std::vector<float> x = random_floats(T * H, rng, -3.f, 3.f);
      std::vector<float> w = random_floats(H, rng, 0.5f, 1.5f);
      std::vector<float> out(T * H, NAN);
      be.rms_norm(host_tensor(x, {T, H}), host_tensor(w, {H}), 1e-5f, host_tensor(out, {T, H}));
      ASSERT_FALSE(testing::has_non_finite(out));
      EXPECT_LT(testing::max_abs_error(out, reference_rms_norm(x, w, T, H, 1e-5)), 1e-5);
      // An undefined weight is a unit one (a norm folded into the product after it).
      std::vector<float> unit_out(T * H, NAN);
      be.rms_norm(host_tensor(x, {T, H}), Tensor{}, 1e-5f, host_tensor(unit_out, {T, H}));
      const std::vector<float> ones(size_t(H), 1.f);
      EXPECT_LT(testing::max_abs_error(unit_out, reference_rms_norm(x, ones, T, H, 1e-5)), 1e-5);
    }
  }
}

TEST(CpuOps, SiluMul) {
  CpuBackend be;
  Rng rng(3);
  for (int64_t T : {1, 7, 97}) {
    const int64_t I = 45;
    std::vector<float> gu = random_floats(T * 2 * I, rng, -6.f, 6.f);
    std::vector<float> out(T * I, NAN);
    be.silu_mul(host_tensor(gu, {T, 2 * I}), host_tensor(out, {T, I}));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < I; ++i) {
        const double g = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i];
        ASSERT_NEAR(out[t * I + i], g / (1 + std::exp(-g)) * u, 1e-5);
      }
  }
}

TEST(CpuOps, GatherRows) {
  CpuBackend be;
  Rng rng(4);
  const int64_t T = 97, H = 17;
  std::vector<float> x = random_floats(T * H, rng);
  std::vector<int32_t> idx = {96, 0, 5, 5};
  std::vector<float> out(4 * H);
  be.gather_rows(host_tensor(x, {T, H}), host_tensor(idx, {4}), host_tensor(out, {4, H}));
  for (int64_t s = 0; s < 4; ++s)
    for (int64_t i = 0; i < H; ++i) ASSERT_EQ(out[s * H + i], x[idx[s] * H + i]);
  idx[2] = -1;
  EXPECT_THROW(be.gather_rows(host_tensor(x, {T, H}), host_tensor(idx, {4}),
                              host_tensor(out, {4, H})),
               Error);
}

TEST(CpuOps, LinearWithAndWithoutBias) {
  CpuBackend be;
  Rng rng(5);
  for (int64_t T : {1, 7, 97}) {
    for (auto [K, N] : {std::pair<int64_t, int64_t>{64, 33}, {97, 128}, {1, 7}}) {
      std::vector<float> x = random_floats(T * K, rng), w = random_floats(N * K, rng),
                         b = random_floats(N, rng);
      for (bool with_bias : {false, true}) {
        std::vector<float> out(T * N, NAN);
        Tensor bias = host_tensor(b, {N});
        be.linear(host_tensor(x, {T, K}), host_tensor(w, {N, K}), with_bias ? &bias : nullptr,
                  host_tensor(out, {T, N}));
        std::vector<double> want(T * N);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t n = 0; n < N; ++n) {
            double s = with_bias ? b[n] : 0.0;
            for (int64_t k = 0; k < K; ++k) s += double(x[t * K + k]) * w[n * K + k];
            want[t * N + n] = s;
          }
        ASSERT_FALSE(testing::has_non_finite(out));
        EXPECT_LT(testing::max_abs_error(out, want), 1e-4 * std::sqrt(double(K)))
            << "T=" << T << " K=" << K << " N=" << N;
      }
    }
  }
}

// want[t, n] = sum_k a[t, k] w[n, k] (+ bias[n]) in double.
std::vector<double> reference_product(const std::vector<double>& a, const std::vector<float>& w,
                                      const std::vector<float>* bias, int64_t T, int64_t K,
                                      int64_t N) {
  std::vector<double> out(size_t(T * N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = bias ? double((*bias)[n]) : 0.0;
      for (int64_t k = 0; k < K; ++k) s += a[t * K + k] * w[n * K + k];
      out[t * N + n] = s;
    }
  return out;
}

TEST(CpuOps, LinearResidualAddsIntoTheResidual) {
  CpuBackend be;
  Rng rng(6);
  for (int64_t T : {1, 7, 97}) {  // T = 1 takes BLAS's gemv, the others gemm
    for (auto [K, N] : {std::pair<int64_t, int64_t>{64, 33}, {97, 128}}) {
      std::vector<float> x = random_floats(T * K, rng), w = random_floats(N * K, rng),
                         b = random_floats(N, rng), r0 = random_floats(T * N, rng, -3.f, 3.f);
      for (bool with_bias : {false, true}) {
        std::vector<float> residual = r0;
        Tensor bias = host_tensor(b, {N});
        be.linear_residual(host_tensor(x, {T, K}), host_tensor(w, {N, K}),
                           with_bias ? &bias : nullptr, host_tensor(residual, {T, N}));
        std::vector<double> want = reference_product(std::vector<double>(x.begin(), x.end()), w,
                                                     with_bias ? &b : nullptr, T, K, N);
        for (int64_t i = 0; i < T * N; ++i) want[i] += r0[i];
        ASSERT_FALSE(testing::has_non_finite(residual));
        EXPECT_LT(testing::max_abs_error(residual, want), 1e-4 * std::sqrt(double(K)))
            << "T=" << T << " K=" << K << " N=" << N << " bias=" << with_bias;
      }
    }
  }
  std::vector<float> x(12, 1.f), w(8, 1.f), r(6);
  EXPECT_THROW(be.linear_residual(host_tensor(x, {3, 4}), host_tensor(w, {2, 4}), nullptr,
                                  host_tensor(r, {2, 3})),
               Error);
}

TEST(CpuOps, NormLinearIsTheNormedProduct) {
  CpuBackend be;
  Rng rng(7);
  for (int64_t T : {1, 9}) {
    const int64_t K = 96, N = 40;
    std::vector<float> x = random_floats(T * K, rng, -3.f, 3.f), g = random_floats(K, rng, 0.5f, 1.5f),
                       w = random_floats(N * K, rng), b = random_floats(N, rng);
    std::vector<float> normed(T * K, NAN), out(T * N, NAN);
    Tensor bias = host_tensor(b, {N});
    be.norm_linear(host_tensor(x, {T, K}), host_tensor(g, {K}), 1e-6f, host_tensor(w, {N, K}),
                   &bias, host_tensor(normed, {T, K}), host_tensor(out, {T, N}));
    const std::vector<double> want =
        reference_product(reference_rms_norm(x, g, T, K, 1e-6), w, &b, T, K, N);
    ASSERT_FALSE(testing::has_non_finite(out));
    EXPECT_LT(testing::max_abs_error(out, want), 1e-4 * std::sqrt(double(K))) << "T=" << T;
  }
}

TEST(CpuOps, SiluMulLinearResidualAddsTheMlpOutput) {
  CpuBackend be;
  Rng rng(8);
  for (int64_t T : {1, 9}) {
    const int64_t I = 72, N = 24;
    std::vector<float> gu = random_floats(T * 2 * I, rng, -4.f, 4.f), w = random_floats(N * I, rng),
                       r0 = random_floats(T * N, rng, -3.f, 3.f);
    std::vector<float> act(T * I, NAN), residual = r0;
    be.silu_mul_linear_residual(host_tensor(gu, {T, 2 * I}), host_tensor(w, {N, I}),
                                host_tensor(act, {T, I}), host_tensor(residual, {T, N}));
    std::vector<double> a(size_t(T * I));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < I; ++i) {
        const double gate = gu[t * 2 * I + i], up = gu[t * 2 * I + I + i];
        a[t * I + i] = gate / (1 + std::exp(-gate)) * up;
      }
    std::vector<double> want = reference_product(a, w, nullptr, T, I, N);
    for (int64_t i = 0; i < T * N; ++i) want[i] += r0[i];
    ASSERT_FALSE(testing::has_non_finite(residual));
    EXPECT_LT(testing::max_abs_error(residual, want), 1e-4 * std::sqrt(double(I))) << "T=" << T;
  }
}

TEST(CpuOps, RejectsWrongDtypesAndShapes) {
  CpuBackend be;
  std::vector<float> x(12, 1.f), w(4, 1.f), out(12);
  std::vector<int32_t> xi(12, 1);
  EXPECT_THROW(be.rms_norm(host_tensor(xi, {3, 4}), host_tensor(w, {4}), 1e-6f,
                           host_tensor(out, {3, 4})),
               Error);
  EXPECT_THROW(be.rms_norm(host_tensor(x, {4, 3}), host_tensor(w, {4}), 1e-6f,
                           host_tensor(out, {4, 3})),
               Error);
  EXPECT_THROW(be.linear(host_tensor(x, {3, 4}), host_tensor(w, {2, 2}), nullptr,
                         host_tensor(out, {3, 4})),
               Error);
  try {
    be.silu_mul(host_tensor(x, {3, 4}), host_tensor(out, {3, 4}));
    FAIL() << "silu_mul accepted gate_up [3, 4] for out [3, 4]";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gate_up"), std::string::npos) << e.what();
  }
}

TEST(CpuBackendMemory, AllocatesAlignedHostMemory) {
  std::unique_ptr<Backend> be = make_cpu_backend();
  EXPECT_EQ(be->device(), Device::CPU);
  EXPECT_EQ(be->activation_dtype(DType::BF16), DType::F32);
  for (size_t bytes : {size_t(0), size_t(1), size_t(100), size_t(1) << 20}) {
    Buffer b = be->allocate(bytes);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
    EXPECT_EQ(b.bytes(), bytes);
  }
  std::vector<float> src = {1.f, 2.f, 3.f}, dst(3);
  Buffer b = be->allocate(12);
  be->copy_from_host(b.data(), src.data(), 12);
  be->copy_to_host(dst.data(), b.data(), 12);
  EXPECT_EQ(dst, src);
  MemoryInfo info = be->memory_info();
  EXPECT_GT(info.total_bytes, size_t(0));
  EXPECT_GT(info.free_bytes, size_t(0));
  EXPECT_LE(info.free_bytes, info.total_bytes);
}

}  // namespace
}  // namespace nanovllm
