// embedding, gather_rows, rms_norm, silu_mul, linear, linear_residual and the fused ops
// (norm_linear, silu_mul_linear_residual: one small-M kernel at <= 8 rows) on the GPU against the
// CPU backend, for every activation dtype, with odd sizes. Inputs are rounded to the dtype first so
// both backends see the same values; outputs are poisoned with NaN before each run.
#include "common/backend_op_cases.h"
#include "gpu_test_util.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

TEST(CudaSimpleOps, EmbeddingAndGatherRows) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  for (DType dt : kActDtypes) {
    for (int64_t H : {8, 97, 1024}) {
      SCOPED_TRACE(std::string(dname(dt)) + " H=" + std::to_string(H));
      Rng rng(uint64_t(H) * 7 + int(dt));
      const int64_t V = 301, T = 7;
      std::vector<float> table = rounded(dt, random_floats(size_t(V * H), rng));
      std::vector<int32_t> ids;
      for (int64_t t = 0; t < T; ++t) ids.push_back(int32_t(rng.index(V)));
      auto d_table = gpu.floats(dt, table, {V, H});
      auto d_ids = gpu.ints(ids, {T});
      auto d_out = gpu.poisoned(dt, {T, H});
      gpu.backend().embedding(d_ids.tensor, d_table.tensor, d_out.tensor);
      std::vector<float> want(size_t(T * H));
      cpu->embedding(host_tensor(ids, {T}), host_tensor(table, {V, H}), host_tensor(want, {T, H}));
      EXPECT_EQ(gpu.read(d_out), want);  // a copy: exact

      auto d_rows = gpu.poisoned(dt, {3, H});
      std::vector<int32_t> idx = {6, 0, 3};
      auto d_idx = gpu.ints(idx, {3});
      gpu.backend().gather_rows(d_out.tensor, d_idx.tensor, d_rows.tensor);
      std::vector<float> rows_want(size_t(3 * H));
      cpu->gather_rows(host_tensor(want, {T, H}), host_tensor(idx, {3}),
                       host_tensor(rows_want, {3, H}));
      EXPECT_EQ(gpu.read(d_rows), rows_want);
    }
  }
}

TEST(CudaSimpleOps, RmsNorm) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  for (DType dt : kActDtypes) {
    for (int64_t H : {7, 64, 97, 1024, 4096}) {
      for (int64_t T : {1, 7, 33}) {
        SCOPED_TRACE(std::string(dname(dt)) + " H=" + std::to_string(H) + " T=" + std::to_string(T));
        Rng rng(uint64_t(H * 131 + T) + int(dt));
        std::vector<float> x = rounded(dt, random_floats(size_t(T * H), rng, -3.f, 3.f));
        std::vector<float> w = rounded(dt, random_floats(size_t(H), rng, 0.5f, 1.5f));
        auto dx = gpu.floats(dt, x, {T, H});
        auto dw = gpu.floats(dt, w, {H});
        auto dout = gpu.poisoned(dt, {T, H});
        gpu.backend().rms_norm(dx.tensor, dw.tensor, 1e-6f, dout.tensor);
        std::vector<float> want(size_t(T * H));
        cpu->rms_norm(host_tensor(x, {T, H}), host_tensor(w, {H}), 1e-6f, host_tensor(want, {T, H}));
        std::vector<float> got = gpu.read(dout);
        ASSERT_TRUE(all_finite(got));
        EXPECT_LT(normalized_error(got, want), tolerance(dt)) << "rms_norm";
        // An undefined weight is a unit one (a norm folded into the product after it).
        auto dunit = gpu.poisoned(dt, {T, H});
        gpu.backend().rms_norm(dx.tensor, Tensor{}, 1e-6f, dunit.tensor);
        cpu->rms_norm(host_tensor(x, {T, H}), Tensor{}, 1e-6f, host_tensor(want, {T, H}));
        got = gpu.read(dunit);
        ASSERT_TRUE(all_finite(got));
        EXPECT_LT(normalized_error(got, want), tolerance(dt)) << "rms_norm, unit weight";
      }
    }
  }
}

TEST(CudaSimpleOps, FusedDecodeOpsMatchCpu) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  struct Shape { int64_t T, K, N; };
  for (DType dt : kActDtypes) {
    // T <= 8 with K % 8 == 0 and 16-bit activations: the fused small-M kernel (N not a multiple
    // of its 4 features per CTA included); T >= 9, K = 100 or F32: the composition (cuBLASLt).
    for (Shape s : {Shape{1, 1024, 4096}, Shape{3, 2048, 1024}, Shape{8, 3072, 1024},
                    Shape{5, 64, 97}, Shape{9, 1024, 256}, Shape{33, 256, 130}, Shape{2, 100, 50}}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(std::string(dname(dt)) + " T=" + std::to_string(s.T) + " K=" +
                     std::to_string(s.K) + " N=" + std::to_string(s.N) +
                     (with_bias ? " bias" : ""));
        const int64_t T = s.T, K = s.K, N = s.N;
        Rng rng(uint64_t(T * 7919 + K * 31 + N) + int(dt) + (with_bias ? 1 : 0));
        std::vector<float> w = rounded(dt, random_floats(size_t(N * K), rng, -0.1f, 0.1f));
        std::vector<float> b = rounded(dt, random_floats(size_t(N), rng));
        std::vector<float> r0 = rounded(dt, random_floats(size_t(T * N), rng));
        auto dw = gpu.floats(dt, w, {N, K});
        auto db = gpu.floats(dt, b, {N});
        Tensor hb = host_tensor(b, {N});
        const Tensor* dbias = with_bias ? &db.tensor : nullptr;
        const Tensor* hbias = with_bias ? &hb : nullptr;

        // linear_residual: residual [T, N] += x [T, K] . w^T (+ b)
        {
          std::vector<float> x = rounded(dt, random_floats(size_t(T * K), rng));
          auto dx = gpu.floats(dt, x, {T, K});
          auto dres = gpu.floats(dt, r0, {T, N});
          gpu.backend().linear_residual(dx.tensor, dw.tensor, dbias, dres.tensor);
          std::vector<float> want = r0;
          cpu->linear_residual(host_tensor(x, {T, K}), host_tensor(w, {N, K}), hbias,
                               host_tensor(want, {T, N}));
          SCOPED_TRACE("linear_residual");
          expect_residual_matches(gpu.read(dres), want, r0, dt);
        }
        // norm_linear: out = (rms_norm(x) * g) . w^T (+ b), x the residual stream
        {
          std::vector<float> x = rounded(dt, random_floats(size_t(T * K), rng, -3.f, 3.f));
          std::vector<float> g = rounded(dt, random_floats(size_t(K), rng, 0.5f, 1.5f));
          auto dx = gpu.floats(dt, x, {T, K});
          auto dg = gpu.floats(dt, g, {K});
          auto dnormed = gpu.poisoned(dt, {T, K});
          auto dout = gpu.poisoned(dt, {T, N});
          gpu.backend().norm_linear(dx.tensor, dg.tensor, 1e-6f, dw.tensor, dbias, dnormed.tensor,
                                    dout.tensor);
          std::vector<float> normed(size_t(T * K)), want(size_t(T * N));
          cpu->norm_linear(host_tensor(x, {T, K}), host_tensor(g, {K}), 1e-6f,
                           host_tensor(w, {N, K}), hbias, host_tensor(normed, {T, K}),
                           host_tensor(want, {T, N}));
          std::vector<float> got = gpu.read(dout);
          ASSERT_TRUE(all_finite(got));
          EXPECT_LT(normalized_error(got, want), tolerance(dt, 2e-6)) << "norm_linear";
        }
        // silu_mul_linear_residual: residual [T, N] += (silu(gate) * up) . w^T, gate_up [T, 2K]
        if (!with_bias) {
          std::vector<float> gu = rounded(dt, random_floats(size_t(T * 2 * K), rng, -4.f, 4.f));
          auto dgu = gpu.floats(dt, gu, {T, 2 * K});
          auto dact = gpu.poisoned(dt, {T, K});
          auto dres = gpu.floats(dt, r0, {T, N});
          gpu.backend().silu_mul_linear_residual(dgu.tensor, dw.tensor, dact.tensor, dres.tensor);
          std::vector<float> act(size_t(T * K)), want = r0;
          cpu->silu_mul_linear_residual(host_tensor(gu, {T, 2 * K}), host_tensor(w, {N, K}),
                                        host_tensor(act, {T, K}), host_tensor(want, {T, N}));
          SCOPED_TRACE("silu_mul_linear_residual");
          expect_residual_matches(gpu.read(dres), want, r0, dt);
        }
      }
    }
  }
}

TEST(CudaSimpleOps, SiluMul) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  for (DType dt : kActDtypes) {
    for (int64_t I : {1, 7, 97, 3072}) {
      SCOPED_TRACE(std::string(dname(dt)) + " I=" + std::to_string(I));
      const int64_t T = 5;
      Rng rng(uint64_t(I) + int(dt));
      std::vector<float> gu = rounded(dt, random_floats(size_t(T * 2 * I), rng, -4.f, 4.f));
      auto dgu = gpu.floats(dt, gu, {T, 2 * I});
      auto dout = gpu.poisoned(dt, {T, I});
      gpu.backend().silu_mul(dgu.tensor, dout.tensor);
      std::vector<float> want(size_t(T * I));
      cpu->silu_mul(host_tensor(gu, {T, 2 * I}), host_tensor(want, {T, I}));
      std::vector<float> got = gpu.read(dout);
      ASSERT_TRUE(all_finite(got));
      EXPECT_LT(normalized_error(got, want), tolerance(dt)) << "silu_mul";
    }
  }
}

TEST(CudaSimpleOps, LinearWithAndWithoutBias) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  struct Shape { int64_t T, K, N; };
  for (DType dt : kActDtypes) {
    // M <= 8 with K % 8 == 0 takes the small-M weight-streaming kernel (N not a multiple of its
    // 4 features per CTA included); K = 100 and M >= 9 take cuBLASLt.
    for (Shape s : {Shape{1, 64, 97}, Shape{7, 1024, 3072}, Shape{8, 2048, 4099}, Shape{3, 24, 5},
                    Shape{2, 100, 50}, Shape{97, 256, 1000}, Shape{256, 1024, 2048}}) {
      for (bool f32_out : {false, true}) {
        for (bool with_bias : {false, true}) {
          if (f32_out && dt == DType::F32) continue;
          SCOPED_TRACE(std::string(dname(dt)) + " T=" + std::to_string(s.T) + " K=" +
                       std::to_string(s.K) + " N=" + std::to_string(s.N) +
                       (f32_out ? " f32 out" : "") + (with_bias ? " bias" : ""));
          Rng rng(uint64_t(s.T * 1000 + s.N) + int(dt));
          std::vector<float> x = rounded(dt, random_floats(size_t(s.T * s.K), rng));
          std::vector<float> w = rounded(dt, random_floats(size_t(s.N * s.K), rng, -0.1f, 0.1f));
          std::vector<float> b = rounded(dt, random_floats(size_t(s.N), rng));
          auto dx = gpu.floats(dt, x, {s.T, s.K});
          auto dw = gpu.floats(dt, w, {s.N, s.K});
          auto db = gpu.floats(dt, b, {s.N});
          const DType out_dt = f32_out ? DType::F32 : dt;
          auto dout = gpu.poisoned(out_dt, {s.T, s.N});
          gpu.backend().linear(dx.tensor, dw.tensor, with_bias ? &db.tensor : nullptr, dout.tensor);
          std::vector<float> want(size_t(s.T * s.N));
          Tensor hb = host_tensor(b, {s.N});
          cpu->linear(host_tensor(x, {s.T, s.K}), host_tensor(w, {s.N, s.K}),
                      with_bias ? &hb : nullptr, host_tensor(want, {s.T, s.N}));
          std::vector<float> got = gpu.read(dout);
          ASSERT_TRUE(all_finite(got));
          // FP32 accumulation everywhere; F32 models must not use TF32 (that would be ~1e-3).
          EXPECT_LT(normalized_error(got, want), f32_out ? 1e-5 : tolerance(dt, 2e-6));
        }
      }
    }
  }
}

TEST(CudaSimpleOps, BadInputsThrowNamedErrors) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto x = gpu.floats(DType::BF16, std::vector<float>(16, 1.f), {2, 8});
  auto w = gpu.floats(DType::F16, std::vector<float>(8, 1.f), {8});
  auto out = gpu.poisoned(DType::BF16, {2, 8});
  try {
    gpu.backend().rms_norm(x.tensor, w.tensor, 1e-6f, out.tensor);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rms_norm"), std::string::npos) << e.what();
  }
  std::vector<float> host(16, 1.f);
  EXPECT_THROW(gpu.backend().silu_mul(host_tensor(host, {2, 8}), out.tensor), Error);
}

TEST(CudaMemory, AllocationTrackingAndCopies) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  // Reports name the GPU (cudaDeviceProp::name), not the backend.
  EXPECT_FALSE(gpu.backend().device_name().empty());
  EXPECT_NE(gpu.backend().device_name(), "cuda");
  const size_t before = gpu.backend().peak_allocated_bytes();
  {
    Buffer a = gpu.backend().allocate(size_t(3) << 20);
    EXPECT_GE(gpu.backend().peak_allocated_bytes(), before + (size_t(3) << 20));
    std::vector<uint8_t> src(size_t(3) << 20);
    for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 31 + 7);
    gpu.backend().copy_from_host(a.data(), src.data(), src.size());
    std::vector<uint8_t> back(src.size());
    gpu.backend().copy_to_host(back.data(), a.data(), back.size());
    EXPECT_EQ(back, src);
  }
  MemoryInfo info = gpu.backend().memory_info();
  EXPECT_GT(info.total_bytes, size_t(0));
  EXPECT_LE(info.free_bytes, info.total_bytes);
  EXPECT_EQ(gpu.backend().activation_dtype(DType::BF16), DType::BF16);
  EXPECT_EQ(gpu.backend().activation_dtype(DType::F16), DType::F16);
  EXPECT_EQ(gpu.backend().activation_dtype(DType::F32), DType::F32);
}

}  // namespace
}  // namespace nanovllm
