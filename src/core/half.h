#pragma once
// Host-side float16/bfloat16 <-> float32 conversions (round to nearest even), usable in device
// code too. Storage types are plain uint16_t so that host code never needs cuda_fp16.h.
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

#if defined(__CUDACC__)
#define NANOVLLM_HD __host__ __device__ __forceinline__
#else
#define NANOVLLM_HD inline
#endif

namespace nanovllm {

NANOVLLM_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

NANOVLLM_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

NANOVLLM_HD float bf16_to_float(uint16_t h) { return bits_float(uint32_t(h) << 16); }

NANOVLLM_HD uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

NANOVLLM_HD float f16_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return bits_float(sign);
    // subnormal: value = mant * 2^-24
    float v = float(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

NANOVLLM_HD uint16_t float_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                                   // below the smallest normal
    // subnormal: round(abs_value * 2^24) with ties to even
    float v = bits_float(abs) * 16777216.0f;
    uint32_t i = uint32_t(v);
    float rem = v - float(i);
    if (rem > 0.5f || (rem == 0.5f && (i & 1u))) ++i;
    return uint16_t(sign | i);
  }
  uint32_t e = ((abs >> 23) - 112u) << 10;
  uint32_t m = (abs >> 13) & 0x3ffu;
  uint32_t rest = abs & 0x1fffu;
  uint32_t h = e | m;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

// x as a tensor of `dtype` holds it: rounded to the nearest F16 / BF16 (ties to even), unchanged
// for F32 (host code: checkpoints, test inputs).
inline float round_to_dtype(DType dtype, float x) {
  if (dtype == DType::BF16) return bf16_to_float(float_to_bf16(x));
  if (dtype == DType::F16) return f16_to_float(float_to_f16(x));
  return x;
}

}  // namespace nanovllm
