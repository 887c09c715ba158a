// qkv_rope_store for head_dim 64 and 128 with a head in registers: lane L holds the E = D / 32
// consecutive elements [L E, L E + E). RoPE's pairs (i, i + D/2) sit 16 lanes apart (one
// shuffle); the rotation's butterfly stages h < E stay inside a lane and the others pair lanes
// L and L ^ (h / E) by shuffles. The float operations and their order are those of the
// shared-memory kernel in qkv_rope_store.cu (the rotation bit-identical to the CPU's), without
// its shared-memory round trips and __syncwarp between stages.
#pragma once
#include "backend/cuda/common.cuh"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/qkv_rope_store_common.cuh"
#include "core/kv_rotation.h"

namespace nanovllm::cuda {

// E bytes from a lane's elements to dst (E-byte aligned) in one store.
template <int E>
__device__ __forceinline__ void store_lane_bytes(char* dst, const uint8_t (&b)[E]) {
  Vec<uint8_t, E> v;
#pragma unroll
  for (int j = 0; j < E; ++j) v.v[j] = b[j];
  store_vec<uint8_t, E>(reinterpret_cast<uint8_t*>(dst), v);
}

// Stores the lane's E elements x of one (token, KV head) at dst (the head's first byte) in the
// cache's format; quantized formats take one scale for the head (warp absmax), written by lane 0.
template <KvDType KV, int E>
__device__ __forceinline__ void store_head_from_lanes(const float (&x)[E], char* dst, float* scale_out,
                                                      int lane) {
  if constexpr (KV == KvDType::F32) {
    Vec<float, E> v;
#pragma unroll
    for (int j = 0; j < E; ++j) v.v[j] = x[j];
    store_vec<float, E>(reinterpret_cast<float*>(dst) + lane * E, v);
  } else if constexpr (KV == KvDType::F16 || KV == KvDType::BF16) {
    Vec<uint16_t, E> v;
#pragma unroll
    for (int j = 0; j < E; ++j) v.v[j] = KV == KvDType::F16 ? float_to_f16(x[j]) : float_to_bf16(x[j]);
    store_vec<uint16_t, E>(reinterpret_cast<uint16_t*>(dst) + lane * E, v);
  } else {
    float absmax = 0.f;
#pragma unroll
    for (int j = 0; j < E; ++j) absmax = fmaxf(absmax, fabsf(x[j]));
    const float scale = kv_scale_for(warp_max(absmax), KV);
    if constexpr (KV == KvDType::INT4) {  // two elements a byte, the even one in the low nibble
      uint8_t b[E / 2];
#pragma unroll
      for (int j = 0; j < E / 2; ++j)
        b[j] = int4_pack(int4_quantize(x[2 * j], scale), int4_quantize(x[2 * j + 1], scale));
      store_lane_bytes<E / 2>(dst + lane * (E / 2), b);
    } else {
      uint8_t b[E];
#pragma unroll
      for (int j = 0; j < E; ++j)
        b[j] = KV == KvDType::INT8 ? uint8_t(int8_quantize(x[j], scale)) : fp8_e4m3_quantize(x[j], scale);
      store_lane_bytes<E>(dst + lane * E, b);
    }
    if (lane == 0) *scale_out = scale;
  }
}

// x = R x (core/kv_rotation.h) for a head spread over the warp as above: signs, the butterfly
// stages h = 1, 2, ..., D/2 in order (a + b at the element with bit h clear, a - b at the other),
// then the norm.
template <int D>
__device__ __forceinline__ void rotate_head_in_lanes(float (&x)[D / 32], int lane) {
  constexpr int E = D / 32;
#pragma unroll
  for (int j = 0; j < E; ++j) x[j] *= kv_rotation_sign(lane * E + j);
#pragma unroll
  for (int h = 1; h < E; h <<= 1)
#pragma unroll
    for (int j = 0; j < E; ++j)
      if (!(j & h)) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
#pragma unroll
  for (int lh = 1; lh < 32; lh <<= 1) {  // stage h = lh * E
    const bool upper = lane & lh;
#pragma unroll
    for (int j = 0; j < E; ++j) {
      const float other = __shfl_xor_sync(0xffffffffu, x[j], lh);
      x[j] = upper ? other - x[j] : x[j] + other;
    }
  }
  const float n = kv_rotation_norm(D);
#pragma unroll
  for (int j = 0; j < E; ++j) x[j] *= n;
}

// grid (T, ceil((Hq + 2 Hkv) / kWarps)), block kWarps * 32: one warp per (token, head).
// qkv [T, (Hq + 2 Hkv) D] of T_; q_out [T, Hq D]; norm weights [D] of W.
template <class T_, class W, KvDType KV, int D>
__global__ void qkv_rope_store_regs_kernel(const T_* __restrict__ qkv, QkvArgs a, const W* q_norm,
                                           const W* k_norm, PagedKvLayer kv, T_* __restrict__ q_out) {
  static_assert(D == 64 || D == 128, "the register path holds D / 32 = 2 or 4 elements a lane");
  constexpr int E = D / 32;
  start_after_previous_kernel();
  __shared__ float2 rope_cs[D / 2];  // (cos, sin) of the token's angle i
  __shared__ float scratch[32];
  const int lane = threadIdx.x & 31;
  const int64_t t = blockIdx.x;
  const float r = token_prologue<T_>(a, t, D, rope_cs, scratch);
  const WarpHead w = warp_head(a, t);
  if (w.idle) return;
  const int h = w.h;
  const bool is_q = w.is_q, is_k = w.is_k;

  const Vec<T_, E> in = load_vec<T_, E>(qkv + (t * int64_t(a.Hq + 2 * a.Hkv) + h) * D + lane * E);
  float x[E];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < E; ++j) {
    x[j] = r * to_f(in.v[j]);
    ss += x[j] * x[j];
  }
  const W* norm = is_q ? q_norm : (is_k ? k_norm : nullptr);
  if (norm) {
    ss = warp_sum(ss);
    const float inv = 1.f / sqrtf(ss / float(D) + a.eps);
#pragma unroll
    for (int j = 0; j < E; ++j) x[j] = x[j] * inv * weight_at(norm, lane * E + j);
  }
  if ((is_q || is_k) && a.inv_freq) {
    const bool upper = lane >= 16;  // holds elements i + D/2 of the pairs (i, i + D/2)
#pragma unroll
    for (int j = 0; j < E; ++j) {
      const float other = __shfl_xor_sync(0xffffffffu, x[j], 16);
      const float2 cs = rope_cs[(lane & 15) * E + j];
      x[j] = upper ? x[j] * cs.x + other * cs.y : x[j] * cs.x - other * cs.y;
    }
  }
  if ((is_q || is_k) && a.rotate_qk) rotate_head_in_lanes<D>(x, lane);
  if (is_q) {
    Vec<T_, E> o;
#pragma unroll
    for (int j = 0; j < E; ++j) o.v[j] = from_f<T_>(x[j]);
    store_vec<T_, E>(q_out + (t * a.Hq + h) * int64_t(D) + lane * E, o);
    return;
  }
  const int64_t head = w.slot * a.Hkv + w.kv_head;
  char* dst = static_cast<char*>(is_k ? kv.k : kv.v) + head * kv_head_bytes(KV, D);
  store_head_from_lanes<KV, E>(x, dst, (is_k ? kv.k_scale : kv.v_scale) + head, lane);
}

}  // namespace nanovllm::cuda
