#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

// out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]; gate_up F32 [T, 2I]
void silu_mul(const Tensor& gate_up, Tensor out) {
  check_tensor(gate_up, "silu_mul", "gate_up", DType::F32, 2);
  check_tensor(out, "silu_mul", "out", DType::F32, 2);
  const int64_t T = gate_up.dim(0), I = out.dim(1);
  check_dim(out, 0, T, "silu_mul", "out");
  check_dim(gate_up, 1, 2 * I, "silu_mul", "gate_up");
  const float* g = gate_up.ptr<float>();
  float* o = out.ptr<float>();
#pragma omp parallel for schedule(static) if (T * I > 32768)
  for (int64_t t = 0; t < T; ++t) {
    const float* gate = g + t * 2 * I;
    const float* up = gate + I;
    float* row = o + t * I;
    for (int64_t i = 0; i < I; ++i) row[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
  }
}

}  // namespace nanovllm::cpu
