#pragma once
// The paged-cache element formats on the device: the codecs themselves are core/kv_quant.h's
// (shared with the CPU backend, so both store bit-identical caches); this adds the runtime ->
// compile-time KvDType dispatch and the 8-element register decode the attention kernels use.
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
    const uint32_t w[2] = {u.x, u.y};
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = fp8_e4m3_decode(uint8_t(w[i >> 2] >> (8 * (i & 3))));
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

}  // namespace nanovllm::cuda
