#include <cblas.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

// out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]), all F32, through OpenBLAS.
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) {
  check_tensor(x, "linear", "x", DType::F32, 2);
  check_tensor(w, "linear", "w", DType::F32, 2);
  check_tensor(out, "linear", "out", DType::F32, 2);
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  check_dim(w, 1, K, "linear", "w");
  check_dim(out, 0, T, "linear", "out");
  check_dim(out, 1, N, "linear", "out");
  NANOVLLM_CHECK(out.data != x.data, "linear: out must not alias x");
  if (bias) {
    check_tensor(*bias, "linear", "bias", DType::F32, 1);
    check_dim(*bias, 0, N, "linear", "bias");
  }
  if (T == 0 || N == 0) return;
  float* o = out.ptr<float>();
  if (K == 0) {
    for (int64_t i = 0; i < T * N; ++i) o[i] = 0.f;
  } else if (T == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(N), blasint(K), 1.f, w.ptr<float>(),
                blasint(K), x.ptr<float>(), 1, 0.f, o, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(T), blasint(N), blasint(K), 1.f,
                x.ptr<float>(), blasint(K), w.ptr<float>(), blasint(K), 0.f, o, blasint(N));
  }
  if (bias) {
    const float* b = bias->ptr<float>();
#pragma omp parallel for schedule(static) if (T * N > 65536)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) o[t * N + n] += b[n];
  }
}

}  // namespace nanovllm::cpu
