#pragma once
// The orthogonal rotation R = H S applied to a head vector before a quantized KV cache stores it
// (QuaRot-style): S a fixed +-1 diagonal, H the normalized Walsh-Hadamard matrix of order D
// (H = H^T, H H = I; D a power of two). Rotating spreads an outlier channel over the whole head,
// so one absmax scale per (token, head) fits the values better. R is orthogonal, so
// q.k = (R q).(R k): the model rotates q and K alike and attention needs no change.
//
// The transform is the in-place fast Walsh-Hadamard butterfly, stage h = 1, 2, 4, ..., D/2
// pairing (i, i + h) for every i with (i & h) == 0 into (a + b, a - b), then times 1/sqrt(D). The
// CUDA kernel runs the same stages in the same order, so both backends give identical floats for
// identical inputs.
#include <cmath>
#include <cstdint>

#include "core/half.h"

namespace nanovllm {

constexpr bool kv_rotation_supported(int64_t head_dim) {
  return head_dim >= 2 && (head_dim & (head_dim - 1)) == 0;
}

// S's entry i: a fixed pseudo-random sign (the top bit of a multiplicative hash of i).
NANOVLLM_HD float kv_rotation_sign(int32_t i) {
  return (uint32_t(i + 1) * 2654435761u) >> 31 ? -1.f : 1.f;
}

NANOVLLM_HD float kv_rotation_norm(int32_t head_dim) { return 1.f / sqrtf(float(head_dim)); }

// x[D] = R x[D] = H (S x), D a power of two.
inline void kv_rotate(float* x, int32_t D) {
  for (int32_t i = 0; i < D; ++i) x[i] *= kv_rotation_sign(i);
  for (int32_t h = 1; h < D; h <<= 1) {
    for (int32_t i = 0; i < D; ++i) {
      if (i & h) continue;
      const float a = x[i], b = x[i + h];
      x[i] = a + b;
      x[i + h] = a - b;
    }
  }
  const float n = kv_rotation_norm(D);
  for (int32_t i = 0; i < D; ++i) x[i] *= n;
}

}  // namespace nanovllm
