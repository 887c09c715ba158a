#pragma once
// Element codecs of the paged KV cache, one per KvDType, usable on the host and in CUDA kernels.
//
// Scheme (DESIGN.md, issue 4): one FP32 scale per (token, KV head), symmetric, no zero point.
//   INT8      scale = max|x| / 127, q = round_to_nearest_even(x / scale) saturated to [-127, 127]
//   FP8_E4M3  scale = max|x| / 448, q = e4m3fn(x / scale) (OCP e4m3fn: bias 7, max 448, no inf,
//             NaN = 0x7f / 0xff), round to nearest even, saturated to +-448
//   INT4      scale = max|x| / 7,   q = round_to_nearest_even(x / scale) saturated to [-7, 7],
//             two per byte: element 2i in the low nibble, 2i+1 in the high nibble, each a
//             sign-extended two's-complement nibble (-8 is never written). The INT4 choice here is
//             per-(token, head) symmetric like INT8 (on rotated heads, core/kv_rotation.h);
//             docs/kv_quant_accuracy.md has what that leaves to per-channel K scaling.
// A zero (all-zero head) scale stores zeros and decodes to zeros: the division is guarded.
// value = dequantize(q) * scale; attention folds the scale into the score (K) or the
// probability weight (V) instead of building a dequantized copy of the cache.
#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "core/kv_dtype.h"

namespace nanovllm {

constexpr float kInt8QMax = 127.f;
constexpr float kFp8E4M3Max = 448.f;
constexpr float kInt4QMax = 7.f;

// The largest magnitude a quantized value can take, in units of its scale (1 for float formats).
NANOVLLM_HD float kv_qmax(KvDType t) {
  switch (t) {
    case KvDType::INT8: return kInt8QMax;
    case KvDType::FP8_E4M3: return kFp8E4M3Max;
    case KvDType::INT4: return kInt4QMax;
    default: return 1.f;
  }
}

// Scale of one (token, head) vector whose largest magnitude is absmax; 0 for an all-zero head.
NANOVLLM_HD float kv_scale_for(float absmax, KvDType t) { return absmax / kv_qmax(t); }

NANOVLLM_HD float round_half_even(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);
#else
  return std::nearbyint(x);  // default rounding mode: to nearest, ties to even
#endif
}

// x / scale rounded and clamped to [-qmax, qmax]; 0 when scale is 0 (or x is NaN).
NANOVLLM_HD float quantize_symmetric(float x, float scale, float qmax) {
  if (!(scale > 0.f)) return 0.f;
  float v = round_half_even(x / scale);
  if (!(v == v)) return 0.f;
  return v > qmax ? qmax : (v < -qmax ? -qmax : v);
}

// ---- INT8 ----
NANOVLLM_HD int8_t int8_quantize(float x, float scale) {
  return int8_t(quantize_symmetric(x, scale, kInt8QMax));
}
NANOVLLM_HD float int8_dequantize(int8_t q, float scale) { return float(q) * scale; }

// ---- FP8 e4m3fn ----
NANOVLLM_HD uint8_t fp8_e4m3_encode(float x) {
  uint32_t u = float_bits(x);
  uint8_t sign = uint8_t((u >> 24) & 0x80u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint8_t(sign | 0x7fu);  // NaN
  float a = bits_float(abs);
  if (a >= kFp8E4M3Max) return uint8_t(sign | 0x7eu);  // saturate (inf included)
  if (a < 0.015625f) {                                  // below 2^-6: subnormal, units of 2^-9
    // a * 512 is exact (power of two); rounding 8.0 up gives 0x08, the smallest normal.
    return uint8_t(sign | uint8_t(round_half_even(a * 512.f)));
  }
  uint32_t code = (((abs >> 23) - 120u) << 3) | ((abs >> 20) & 7u);  // rebias 127 -> 7
  uint32_t rest = abs & 0xfffffu;                                     // the 20 dropped bits
  if (rest > 0x80000u || (rest == 0x80000u && (code & 1u))) ++code;  // < 448 never reaches 0x7f
  return uint8_t(sign | code);
}

// Branch-free (masks only), so that a loop of them vectorizes on the CPU.
NANOVLLM_HD float fp8_e4m3_decode(uint8_t b) {
  const uint32_t sign = uint32_t(b & 0x80u) << 24;
  const uint32_t em = b & 0x7fu;  // exponent e (4 bits) and mantissa m (3 bits)
  // e >= 1: (em << 20) is (e << 23) | (m << 20); + 120 rebiases e from 7 to 127.
  const uint32_t normal = sign | ((em << 20) + (120u << 23));
  // e == 0: m x 2^-9, exact in float.
  const uint32_t subnormal = sign | float_bits(float(em) * 0.001953125f);
  const uint32_t is_normal = 0u - uint32_t(em >= 8u), is_nan = 0u - uint32_t(em == 0x7fu);  // masks
  const uint32_t finite = (normal & is_normal) | (subnormal & ~is_normal);
  return bits_float((finite & ~is_nan) | ((sign | 0x7fc00000u) & is_nan));
}

NANOVLLM_HD uint8_t fp8_e4m3_quantize(float x, float scale) {
  if (!(scale > 0.f)) return 0;
  return fp8_e4m3_encode(x / scale);
}
NANOVLLM_HD float fp8_e4m3_dequantize(uint8_t q, float scale) {
  return fp8_e4m3_decode(q) * scale;
}

// ---- INT4 ----
NANOVLLM_HD int32_t int4_quantize(float x, float scale) {
  return int32_t(quantize_symmetric(x, scale, kInt4QMax));
}
// lo goes to element 2i (low nibble), hi to element 2i+1.
NANOVLLM_HD uint8_t int4_pack(int32_t lo, int32_t hi) {
  return uint8_t((uint32_t(lo) & 0xfu) | ((uint32_t(hi) & 0xfu) << 4));
}
NANOVLLM_HD int32_t int4_low(uint8_t b) { return int32_t(int8_t(uint8_t(b << 4))) >> 4; }
NANOVLLM_HD int32_t int4_high(uint8_t b) { return int32_t(int8_t(b)) >> 4; }
// Element i of a packed INT4 vector.
NANOVLLM_HD int32_t int4_at(const uint8_t* packed, int64_t i) {
  uint8_t b = packed[i >> 1];
  return (i & 1) ? int4_high(b) : int4_low(b);
}

// ---- one (token, head) vector of any KvDType ----

// Element i of a stored vector before its scale is applied (float formats: the value itself).
NANOVLLM_HD float kv_load_raw(const void* head, KvDType t, int64_t i) {
  switch (t) {
    case KvDType::F32: return static_cast<const float*>(head)[i];
    case KvDType::F16: return f16_to_float(static_cast<const uint16_t*>(head)[i]);
    case KvDType::BF16: return bf16_to_float(static_cast<const uint16_t*>(head)[i]);
    case KvDType::INT8: return float(static_cast<const int8_t*>(head)[i]);
    case KvDType::FP8_E4M3: return fp8_e4m3_decode(static_cast<const uint8_t*>(head)[i]);
    case KvDType::INT4: return float(int4_at(static_cast<const uint8_t*>(head), i));
  }
  return 0.f;
}

// Stores x[0, n) as one (token, head) vector of type t at dst (kv_head_bytes(t, n) bytes) and
// returns its scale (1 for float formats, which keep no scale).
NANOVLLM_HD float kv_store_head(const float* x, int32_t n, KvDType t, void* dst) {
  switch (t) {
    case KvDType::F32: {
      float* out = static_cast<float*>(dst);
      for (int32_t i = 0; i < n; ++i) out[i] = x[i];
      return 1.f;
    }
    case KvDType::F16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      for (int32_t i = 0; i < n; ++i) out[i] = float_to_f16(x[i]);
      return 1.f;
    }
    case KvDType::BF16: {
      uint16_t* out = static_cast<uint16_t*>(dst);
      for (int32_t i = 0; i < n; ++i) out[i] = float_to_bf16(x[i]);
      return 1.f;
    }
    default: break;
  }
  float absmax = 0.f;
  for (int32_t i = 0; i < n; ++i) absmax = fmaxf(absmax, fabsf(x[i]));
  float scale = kv_scale_for(absmax, t);
  if (t == KvDType::INT8) {
    int8_t* out = static_cast<int8_t*>(dst);
    for (int32_t i = 0; i < n; ++i) out[i] = int8_quantize(x[i], scale);
  } else if (t == KvDType::FP8_E4M3) {
    uint8_t* out = static_cast<uint8_t*>(dst);
    for (int32_t i = 0; i < n; ++i) out[i] = fp8_e4m3_quantize(x[i], scale);
  } else {  // INT4; an odd n leaves the last high nibble 0
    uint8_t* out = static_cast<uint8_t*>(dst);
    for (int32_t i = 0; i < n; i += 2) {
      int32_t hi = i + 1 < n ? int4_quantize(x[i + 1], scale) : 0;
      out[i >> 1] = int4_pack(int4_quantize(x[i], scale), hi);
    }
  }
  return scale;
}

}  // namespace nanovllm
