#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

namespace {

void check_norm(const char* op, const Tensor& x, const Tensor& weight, const Tensor& out) {
  check_tensor(x, op, "x", DType::F32, 2);
  if (weight.defined()) {
    check_tensor(weight, op, "weight", DType::F32, 1);
    check_dim(weight, 0, x.dim(1), op, "weight");
  }
  check_tensor(out, op, "out", DType::F32, 2);
  check_dim(out, 0, x.dim(0), op, "out");
  check_dim(out, 1, x.dim(1), op, "out");
}

// out[H] = x[H] / sqrt(mean(x^2) + eps) * w[H] (w null: unit); the sum of squares is accumulated
// in double. out may alias x.
void norm_row(const float* x, const float* w, float eps, int64_t H, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < H; ++i) ss += double(x[i]) * double(x[i]);
  const float inv = float(1.0 / std::sqrt(ss / double(H) + double(eps)));
  for (int64_t i = 0; i < H; ++i) out[i] = x[i] * inv * (w ? w[i] : 1.f);
}

}  // namespace

// out[T, H] = x / rms(x) * weight[H] (undefined weight: unit)
void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out) {
  check_norm("rms_norm", x, weight, out);
  const int64_t T = x.dim(0), H = x.dim(1);
  const float* xp = x.ptr<float>();
  const float* w = weight.defined() ? weight.ptr<float>() : nullptr;
  float* o = out.ptr<float>();
#pragma omp parallel for schedule(static) if (T * H > 32768)
  for (int64_t t = 0; t < T; ++t) norm_row(xp + t * H, w, eps, H, o + t * H);
}

}  // namespace nanovllm::cpu
