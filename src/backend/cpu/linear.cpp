#include <cblas.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

namespace {

// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]), or out += it when accumulate; all F32.
void linear_into(const char* op, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out,
                 bool accumulate) {
  const char* out_name = accumulate ? "residual" : "out";
  check_tensor(x, op, "x", DType::F32, 2);
  check_tensor(w, op, "w", DType::F32, 2);
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
  } else if (T == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(N), blasint(K), 1.f, w.ptr<float>(),
                blasint(K), x.ptr<float>(), 1, beta, o, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(N), blasint(K), 1.f,
                x.ptr<float>(), blasint(K), w.ptr<float>(), blasint(K), beta, o, blasint(N));
  }
  if (bias) {
    const float* b = bias->ptr<float>();
#pragma omp parallel for schedule(static) if (T * N > 65536)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) o[t * N + n] += b[n];
  }
}

}  // namespace

// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]), all F32, through OpenBLAS.
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) {
  linear_into("linear", x, w, bias, out, false);
}

// residual[T, N] += x[T, K] . w[N, K]^T (+ bias[N]) (BLAS with beta = 1).
void linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor residual) {
  linear_into("linear_residual", x, w, bias, residual, true);
}

}  // namespace nanovllm::cpu
