#include <cblas.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"
#include "core/half.h"

namespace nanovllm::cpu {

namespace {

// o[T, n] (+)= x[T, K] . w[n, K]^T for F32 w rows (row stride K) into o (row stride ldo).
void product(const float* x, const float* w, float* o, int64_t T, int64_t n, int64_t K, int64_t ldo,
             float beta) {
  if (T == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(n), blasint(K), 1.f, w, blasint(K), x, 1,
                beta, o, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(n), blasint(K), 1.f,
                x, blasint(K), w, blasint(K), beta, o, blasint(ldo));
}

#if defined(__x86_64__)
// Eight BF16 values at p widened to floats (a BF16 value is the high half of its float).
__attribute__((target("avx2,fma"))) inline __m256 widen_bf16x8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// o[n] (+)= w[n, :] . x for BF16 w rows n0 <= n < n1, widened in registers (AVX2 + FMA: 8 values
// a step).
__attribute__((target("avx2,fma"))) void gemv_bf16_avx2(const float* x, const uint16_t* w, float* o,
                                                        int64_t n0, int64_t n1, int64_t K,
                                                        float beta) {
  const int64_t K8 = K & ~int64_t(7);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* row = w + n * K;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K8; k += 16) {
      acc0 = _mm256_fmadd_ps(widen_bf16x8(row + k), _mm256_loadu_ps(x + k), acc0);
      acc1 = _mm256_fmadd_ps(widen_bf16x8(row + k + 8), _mm256_loadu_ps(x + k + 8), acc1);
    }
    for (; k < K8; k += 8) acc0 = _mm256_fmadd_ps(widen_bf16x8(row + k), _mm256_loadu_ps(x + k), acc0);
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    float sum = _mm_cvtss_f32(s);
    for (; k < K; ++k) sum += bf16_to_float(row[k]) * x[k];
    o[n] = beta == 0.f ? sum : sum + beta * o[n];
  }
}

// sums[t] = the eight lanes of acc[t] (t < 8): pairwise adds, then the two 128-bit halves.
__attribute__((target("avx2,fma"))) inline void lane_sums8(const __m256 (&acc)[8], float* sums) {
  const __m256 a01 = _mm256_hadd_ps(acc[0], acc[1]), a23 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 a45 = _mm256_hadd_ps(acc[4], acc[5]), a67 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 q0 = _mm256_hadd_ps(a01, a23), q1 = _mm256_hadd_ps(a45, a67);
  _mm256_storeu_ps(sums, _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20),
                                       _mm256_permute2f128_ps(q0, q1, 0x31)));
}

// o[t, n .. n + R) (+)= w[n + r, :] . x[t, :] for the T rows of x and R consecutive BF16 rows of
// w: each weight widened once in registers for all T rows, T x R accumulators (at most 16 with
// the operands in the 16 AVX registers), one row's T sums reduced together.
template <int T, int R>
__attribute__((target("avx2,fma"))) inline void rows_pass(const float* x, const uint16_t* w, float* o,
                                                          int64_t n, int64_t K, int64_t ldo, float beta) {
  const int64_t K8 = K & ~int64_t(7);
  __m256 acc[R][8];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < 8; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = widen_bf16x8(w + (n + r) * K + k);
    for (int t = 0; t < T; ++t) {
      const __m256 xv = _mm256_loadu_ps(x + t * K + k);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float sums[8];
    lane_sums8(acc[r], sums);
    const uint16_t* row = w + (n + r) * K;
    for (int t = 0; t < T; ++t) {
      float sum = sums[t];
      for (int64_t k = K8; k < K; ++k) sum += bf16_to_float(row[k]) * x[t * K + k];
      float* dst = o + t * ldo + n + r;
      *dst = beta == 0.f ? sum : sum + beta * *dst;
    }
  }
}

// o[t, n] (+)= w[n, :] . x[t, :] for the T (2..8) rows of x and BF16 rows n0 <= n < n1 (o's row
// stride ldo). A few rows of x (batched decode) read each weight once, as gemv_bf16_avx2 does for
// one; fewer rows of x take more rows of w a pass (fewer loads a multiply-add): 4 for 2, 2 for
// 3-6, 1 for 7-8.
template <int T>
__attribute__((target("avx2,fma"))) void gemm_bf16_rows_avx2(const float* x, const uint16_t* w, float* o,
                                                             int64_t n0, int64_t n1, int64_t K,
                                                             int64_t ldo, float beta) {
  static_assert(T >= 2 && T <= 8, "one accumulator per row of x and of w, sixteen at most");
  constexpr int R = T <= 2 ? 4 : T <= 6 ? 2 : 1;
  int64_t n = n0;
  for (; n + R <= n1; n += R) rows_pass<T, R>(x, w, o, n, K, ldo, beta);
  for (; n < n1; ++n) rows_pass<T, 1>(x, w, o, n, K, ldo, beta);
}

using GemmRows = void (*)(const float*, const uint16_t*, float*, int64_t, int64_t, int64_t, int64_t, float);

// gemm_bf16_rows_avx2 for T rows of x (2..8).
GemmRows gemm_bf16_rows_for(int64_t T) {
  static constexpr GemmRows kernels[] = {gemm_bf16_rows_avx2<2>, gemm_bf16_rows_avx2<3>, gemm_bf16_rows_avx2<4>,
                                         gemm_bf16_rows_avx2<5>, gemm_bf16_rows_avx2<6>, gemm_bf16_rows_avx2<7>,
                                         gemm_bf16_rows_avx2<8>};
  return kernels[T - 2];
}
#endif

// The same with BF16 w[N, K]: up to 8 rows of x on AVX2 read each weight once, widened in
// registers; otherwise blocks of rows are widened into a per-thread F32 buffer that stays in
// cache, then multiplied there, so memory sees only the BF16 bytes.
void product_bf16_weights(const float* x, const uint16_t* w, float* o, int64_t T, int64_t N,
                          int64_t K, float beta) {
  // Rows a block: 64 K weights for up to 8 rows of x (~256 KiB when widened), ~1 MiB widened for
  // more (a larger product per BLAS call, the widening repaid over more rows of x).
  const int64_t rows = std::max<int64_t>(8, (int64_t(1) << (T <= 8 ? 16 : 18)) / K);
  const int64_t blocks = (N + rows - 1) / rows;
#if defined(__x86_64__)
  if (T == 1 && has_avx2_fma()) {
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; ++b)
      gemv_bf16_avx2(x, w, o, b * rows, std::min(N, (b + 1) * rows), K, beta);
    return;
  }
  if (T <= 8 && has_avx2_fma()) {
    const GemmRows gemm = gemm_bf16_rows_for(T);
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; ++b) gemm(x, w, o, b * rows, std::min(N, (b + 1) * rows), K, N, beta);
    return;
  }
#endif
#pragma omp parallel if (blocks > 1)
  {
    std::vector<float> wide;  // [rows, K] of this thread
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t n0 = b * rows, n = std::min(rows, N - n0);
      wide.resize(size_t(n * K));
      const uint16_t* src = w + n0 * K;
      for (int64_t i = 0; i < n * K; ++i) wide[size_t(i)] = bf16_to_float(src[i]);
      product(x, wide.data(), o + n0, T, n, K, N, beta);
    }
  }
}

// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]), or out += it when accumulate; x, out and bias
// F32, w F32 or BF16 (CpuBackend::weight_dtype).
void linear_into(const char* op, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out,
                 bool accumulate) {
  const char* out_name = accumulate ? "residual" : "out";
  check_tensor(x, op, "x", DType::F32, 2);
  check_tensor(w, op, "w", w.dtype == DType::BF16 ? DType::BF16 : DType::F32, 2);
  check_tensor(out, op, out_name, DType::F32, 2);
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  check_dim(w, 1, K, op, "w");
  check_dim(out, 0, T, op, out_name);
  check_dim(out, 1, N, op, out_name);
  NANOVLLM_CHECK(out.data != x.data, op, ": the output must not alias x");
  if (bias) {
    check_tensor(*bias, op, "bias", DType::F32, 1);
    check_dim(*bias, 0, N, op, "bias");
  }
  if (T == 0 || N == 0) return;
  float* o = out.ptr<float>();
  const float beta = accumulate ? 1.f : 0.f;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < T * N; ++i) o[i] = 0.f;
  } else if (w.dtype == DType::BF16) {
    product_bf16_weights(x.ptr<float>(), w.ptr<uint16_t>(), o, T, N, K, beta);
  } else {
    product(x.ptr<float>(), w.ptr<float>(), o, T, N, K, N, beta);
  }
  if (bias) {
    const float* b = bias->ptr<float>();
#pragma omp parallel for schedule(static) if (T * N > 65536)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) o[t * N + n] += b[n];
  }
}

}  // namespace

// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]) through OpenBLAS (w F32 or BF16).
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) {
  linear_into("linear", x, w, bias, out, false);
}

// residual[T, N] += x[T, K] . w[N, K]^T (+ bias[N]) (BLAS with beta = 1).
void linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor residual) {
  linear_into("linear_residual", x, w, bias, residual, true);
}

}  // namespace nanovllm::cpu
