#pragma once
// The paged-cache element formats on the device: the codecs themselves are core/kv_quant.h's
// (shared with the CPU backend, so both store bit-identical caches); this adds the runtime ->
// compile-time KvDType dispatch and the 8-element register decode the attention kernels use.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "core/error.h"
#include "core/kv_quant.h"

namespace nanovllm::cuda {

template <KvDType T>
using KvTag = std::integral_constant<KvDType, T>;

template <class F>
void dispatch_kv(KvDType t, F&& f) {
  switch (t) {
    case KvDType::F32: f(KvTag<KvDType::F32>{}); return;
    case KvDType::F16: f(KvTag<KvDType::F16>{}); return;
    case KvDType::BF16: f(KvTag<KvDType::BF16>{}); return;
    case KvDType::INT8: f(KvTag<KvDType::INT8>{}); return;
    case KvDType::FP8_E4M3: f(KvTag<KvDType::FP8_E4M3>{}); return;
    case KvDType::INT4: f(KvTag<KvDType::INT4>{}); return;
  }
  throw_error("cuda backend: unknown kv cache dtype ", int(t));
}

// The four E4M3 bytes of w as two FP16 pairs: bytes 0, 1 in lo, bytes 2, 3 in hi (the lower byte
// in the lower half); exact. sm_89+ converts a pair in one instruction that reads either half of
// w (no shift); older GPUs decode each byte.
__device__ __forceinline__ void e4m3x4_to_half2x2(uint32_t w, uint32_t& lo, uint32_t& hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("{\n .reg .b16 l, h;\n mov.b32 {l, h}, %2;\n cvt.rn.f16x2.e4m3x2 %0, l;\n"
      " cvt.rn.f16x2.e4m3x2 %1, h;\n}"
      : "=r"(lo), "=r"(hi)
      : "r"(w));
#else
  auto pair = [](uint32_t b) {
    const __half2 h = __floats2half2_rn(fp8_e4m3_decode(uint8_t(b)), fp8_e4m3_decode(uint8_t(b >> 8)));
    return *reinterpret_cast<const uint32_t*>(&h);
  };
  lo = pair(w);
  hi = pair(w >> 16);
#endif
}

// The four FP8 E4M3 bytes of w (byte i = element i) as floats, exactly fp8_e4m3_decode's values:
// the FP16 pairs above and two exact FP16 -> FP32 conversions, instead of the bit-field decode's
// ~10 instructions per element, which bound the CUDA-core decode loop of FP8 caches.
__device__ __forceinline__ void fp8x4_decode(uint32_t w, float* out) {
  uint32_t pairs[2];
  e4m3x4_to_half2x2(w, pairs[0], pairs[1]);
#pragma unroll
  for (int pair = 0; pair < 2; ++pair) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&pairs[pair]));
    out[2 * pair] = f.x;
    out[2 * pair + 1] = f.y;
  }
}

// Bytes that hold 8 consecutive elements of a head vector (8 elements = one 16-byte load for
// 16-bit formats, 8 bytes for INT8/FP8, 4 for INT4, 32 for F32).
template <KvDType T>
constexpr int kv_bytes_per_8() {
  return T == KvDType::F32 ? 32 : (T == KvDType::F16 || T == KvDType::BF16) ? 16
                                : T == KvDType::INT4 ? 4 : 8;
}

// Decodes 8 stored elements starting at element e (a multiple of 8) of a head vector into
// out[8], unscaled ("raw"): the per-(token, head) scale is applied by the caller.
template <KvDType T>
__device__ __forceinline__ void kv_load8(const char* head, int e, float out[8]) {
  if constexpr (T == KvDType::F32) {
    const float4* p = reinterpret_cast<const float4*>(head + e * 4);
    float4 a = p[0], b = p[1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else if constexpr (T == KvDType::F16 || T == KvDType::BF16) {
    uint4 u = *reinterpret_cast<const uint4*>(head + e * 2);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint16_t lo = uint16_t(w[i] & 0xffffu), hi = uint16_t(w[i] >> 16);
      if constexpr (T == KvDType::BF16) {
        out[2 * i] = bf16_to_float(lo);
        out[2 * i + 1] = bf16_to_float(hi);
      } else {
        out[2 * i] = __half2float(__ushort_as_half(lo));
        out[2 * i + 1] = __half2float(__ushort_as_half(hi));
      }
    }
  } else if constexpr (T == KvDType::INT8) {
    uint2 u = *reinterpret_cast<const uint2*>(head + e);
    const uint32_t w[2] = {u.x, u.y};
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = float(int8_t(uint8_t(w[i >> 2] >> (8 * (i & 3)))));
  } else if constexpr (T == KvDType::FP8_E4M3) {
    uint2 u = *reinterpret_cast<const uint2*>(head + e);
    fp8x4_decode(u.x, out);
    fp8x4_decode(u.y, out + 4);
  } else {  // INT4: 8 elements in 4 bytes, element 2i in the low nibble of byte i
    const uint32_t w = *reinterpret_cast<const uint32_t*>(head + e / 2);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint8_t b = uint8_t(w >> (8 * i));
      out[2 * i] = float(int4_low(b));
      out[2 * i + 1] = float(int4_high(b));
    }
  }
}

// Bits of one stored element.
template <KvDType T>
constexpr int kv_elem_bits() {
  return T == KvDType::F32 ? 32 : (T == KvDType::F16 || T == KvDType::BF16) ? 16
                                : T == KvDType::INT4 ? 4 : 8;
}

// BYTES (4, 8 or 16) raw bytes of a cache row, loaded as one access with the streaming
// (evict-first) hint: every K/V row is read once per decode step.
template <int BYTES>
struct KvRaw {
  uint32_t w[BYTES / 4];
};
template <int BYTES>
__device__ __forceinline__ KvRaw<BYTES> kv_load_raw(const char* p) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "kv_load_raw: 4, 8 or 16 bytes");
  KvRaw<BYTES> r;
  if constexpr (BYTES == 16) {
    const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p));
    r.w[0] = u.x; r.w[1] = u.y; r.w[2] = u.z; r.w[3] = u.w;
  } else if constexpr (BYTES == 8) {
    const uint2 u = __ldcs(reinterpret_cast<const uint2*>(p));
    r.w[0] = u.x; r.w[1] = u.y;
  } else {
    r.w[0] = __ldcs(reinterpret_cast<const unsigned int*>(p));
  }
  return r;
}

// Decodes N elements held in raw words (N * bits / 32 of them) into out[N], unscaled. Integer
// formats use the 2^23 magic-number conversion (one byte permute or mask + one FADD per element)
// instead of I2F, whose quarter-rate pipe would otherwise bound INT8/INT4 decode attention.
template <KvDType T, int N>
__device__ __forceinline__ void kv_decode_raw(const uint32_t* w, float* out) {
  if constexpr (T == KvDType::F32) {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = __uint_as_float(w[i]);
  } else if constexpr (T == KvDType::BF16) {
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      out[2 * i] = __uint_as_float(w[i] << 16);
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  } else if constexpr (T == KvDType::F16) {
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      out[2 * i] = __half2float(__ushort_as_half(uint16_t(w[i] & 0xffffu)));
      out[2 * i + 1] = __half2float(__ushort_as_half(uint16_t(w[i] >> 16)));
    }
  } else if constexpr (T == KvDType::INT8) {
    // byte b holds v in [-127, 127]; b ^ 0x80 = v + 128; float(0x4B0000xx) = 2^23 + xx.
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const uint32_t u = w[i] ^ 0x80808080u;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out[4 * i + j] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540u + j)) - 8388736.f;
    }
  } else if constexpr (T == KvDType::FP8_E4M3) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) fp8x4_decode(w[i], out + 4 * i);
  } else {  // INT4: element 2i in the low nibble of byte i; nibble ^ 8 = v + 8
#pragma unroll
    for (int i = 0; i < N / 8; ++i) {
      const uint32_t u = w[i] ^ 0x88888888u;
#pragma unroll
      for (int j = 0; j < 8; ++j)
        out[8 * i + j] = __uint_as_float(0x4B000000u | ((u >> (4 * j)) & 0xfu)) - 8388616.f;
    }
  }
}

}  // namespace nanovllm::cuda
