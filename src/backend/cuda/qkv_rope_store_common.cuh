// What the two qkv_rope_store kernels share (qkv_rope_store.cu: any head_dim through shared
// memory; qkv_rope_store_regs.cuh: head_dim 64 / 128 in registers): their arguments, the norm
// weight read, and the per-token prologue (pending RMSNorm factor, RoPE angles).
#pragma once
#include <type_traits>

#include "backend/cuda/common.cuh"

namespace nanovllm::cuda {

constexpr int kMaxHeadDim = 256;
constexpr int kWarps = 8;  // warps (heads) a CTA

struct QkvArgs {
  int32_t num_tokens, Hq, Hkv, D;
  const float* q_norm;  // [D] float, or null
  const float* k_norm;
  const float* inv_freq;  // [D/2] or null
  float eps;
  const int32_t* positions;  // [T]
  const int64_t* slots;      // [T]
  bool rotate_qk;            // D a power of two (checked by CudaBackend)
  const void* rms_x;         // [T, rms_width] of the activation type: pending RMSNorm rows, or null
  int64_t rms_width;
  float rms_eps;
};

template <class W>
__device__ __forceinline__ float weight_at(const W* w, int i) {
  if constexpr (std::is_same_v<W, float>) return w[i];
  else return to_f(w[i]);
}

// The head a warp works on, blockIdx.y * kWarps + warp, of token t; `idle` past the last head
// and for the K/V heads of a padding token (slot -1), whose warps have nothing to do.
struct WarpHead {
  int h, kv_head;  // kv_head: h's index among the K (or V) heads
  bool is_q, is_k, idle;
  int64_t slot;
};
__device__ __forceinline__ WarpHead warp_head(const QkvArgs& a, int64_t t) {
  WarpHead w;
  w.h = int(blockIdx.y) * kWarps + int(threadIdx.x >> 5);
  w.is_q = w.h < a.Hq;
  w.is_k = !w.is_q && w.h < a.Hq + a.Hkv;
  w.kv_head = w.is_k ? w.h - a.Hq : w.h - a.Hq - a.Hkv;
  w.slot = a.slots[t];
  w.idle = w.h >= a.Hq + 2 * a.Hkv || (!w.is_q && w.slot < 0);
  return w;
}

// The whole CTA's part before any thread may return: the pending RMSNorm factor of token t's row
// (1 without one) and, when the CTA has a q or k head and the model has RoPE, the token's
// (cos, sin) pairs into rope_cs[D / 2], computed in double as the CPU does and rounded to float.
template <class T_>
__device__ __forceinline__ float token_prologue(const QkvArgs& a, int64_t t, int D, float2* rope_cs,
                                                float* scratch) {
  const float r = a.rms_x ? block_row_rms_factor(static_cast<const T_*>(a.rms_x) + t * a.rms_width,
                                                 a.rms_width, a.rms_eps, scratch)
                          : 1.f;
  if (a.inv_freq && int(blockIdx.y) * kWarps < a.Hq + a.Hkv) {
    const double pos = double(a.positions[t]);
    for (int i = threadIdx.x; i < D / 2; i += blockDim.x) {
      double s, c;
      sincos(pos * double(a.inv_freq[i]), &s, &c);
      rope_cs[i] = make_float2(float(c), float(s));
    }
    __syncthreads();
  }
  return r;
}

}  // namespace nanovllm::cuda
