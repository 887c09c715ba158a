// The fused kernel after the QKV product: rows scaled by a pending RMSNorm factor when the
// product's input was the unnormalized residual (RowRms), split into heads, optional per-head
// RMSNorm of q and k
// (Qwen3), NeoX RoPE from inv_freq, q written out, K/V stored into the paged cache at
// slot_mapping (-1 skipped) in the cache's format (quantized per (token, head) with the shared
// codecs of core/kv_quant.h; the absmax is a warp reduction). With rotate_qk, q and K are rotated
// after RoPE by core/kv_rotation.h's R: a Walsh-Hadamard butterfly over the warp's shared row, the
// CPU's stages in the CPU's order (bit-identical floats for the same input; the norm and RoPE
// before it are not bit-identical to the CPU's: float warp sum, FMA-contracted products).
// head_dim 64 and 128 (every model here but stories260K) take the register kernel of
// qkv_rope_store_regs.cuh; this one, through shared memory, takes the others.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/qkv_rope_store_common.cuh"
#include "backend/cuda/qkv_rope_store_regs.cuh"
#include "core/kv_rotation.h"

namespace nanovllm::cuda {
namespace {

// buf[D] = R buf[D] (core/kv_rotation.h) by the 32 lanes of one warp. Stage h pairs (i, i + h)
// with bit h of i clear; lane p of the D/2 pairs takes i = p with a zero bit inserted at h.
__device__ __forceinline__ void rotate_head(float* buf, int D, int lane) {
  for (int d = lane; d < D; d += 32) buf[d] *= kv_rotation_sign(d);
  __syncwarp();
  for (int h = 1; h < D; h <<= 1) {
    for (int p = lane; p < D / 2; p += 32) {
      const int i = ((p & ~(h - 1)) << 1) | (p & (h - 1));
      const float x1 = buf[i], x2 = buf[i + h];
      buf[i] = x1 + x2;
      buf[i + h] = x1 - x2;
    }
    __syncwarp();
  }
  const float n = kv_rotation_norm(D);
  for (int d = lane; d < D; d += 32) buf[d] *= n;
  __syncwarp();
}

// grid (T, ceil((Hq + 2 Hkv) / kWarps)), block kWarps * 32: one warp per (token, head); the
// token's RoPE angles are computed once per CTA, in double as the CPU does, and shared by its
// warps (each head computing its own took two dependent double-precision sincos a lane).
// qkv [T, (Hq + 2 Hkv) D] of T_; q_out [T, Hq D]; norm weights [D] of W.
template <class T_, class W, KvDType KV>
__global__ void qkv_rope_store_kernel(const T_* __restrict__ qkv, QkvArgs a, const W* q_norm,
                                      const W* k_norm, PagedKvLayer kv, T_* __restrict__ q_out) {
  start_after_previous_kernel();
  __shared__ float head_buf[kWarps][kMaxHeadDim];
  __shared__ float2 rope_cs[kMaxHeadDim / 2];  // (cos, sin) of the token's angle i
  __shared__ float scratch[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = blockIdx.x;
  const int D = a.D;
  const float r = token_prologue<T_>(a, t, D, rope_cs, scratch);
  const WarpHead w = warp_head(a, t);
  if (w.idle) return;
  const int h = w.h;
  const bool is_q = w.is_q, is_k = w.is_k;
  float* buf = head_buf[warp];
  const T_* src = qkv + t * int64_t(a.Hq + 2 * a.Hkv) * D + int64_t(h) * D;

  float ss = 0.f;
  for (int d = lane; d < D; d += 32) {
    const float x = r * to_f(src[d]);
    buf[d] = x;
    ss += x * x;
  }
  const W* norm = is_q ? q_norm : (is_k ? k_norm : nullptr);
  if (norm) {
    ss = warp_sum(ss);
    const float inv = 1.f / sqrtf(ss / float(D) + a.eps);
    for (int d = lane; d < D; d += 32) buf[d] = buf[d] * inv * weight_at(norm, d);
  }
  __syncwarp();
  if ((is_q || is_k) && a.inv_freq) {
    const int half = D / 2;
    for (int i = lane; i < half; i += 32) {
      const float cs = rope_cs[i].x, sn = rope_cs[i].y;
      const float x1 = buf[i], x2 = buf[i + half];
      buf[i] = x1 * cs - x2 * sn;
      buf[i + half] = x2 * cs + x1 * sn;
    }
    __syncwarp();
  }
  if ((is_q || is_k) && a.rotate_qk) rotate_head(buf, D, lane);
  if (is_q) {
    T_* dst = q_out + (t * a.Hq + h) * int64_t(D);
    for (int d = lane; d < D; d += 32) dst[d] = from_f<T_>(buf[d]);
    return;
  }
  const int64_t head = w.slot * a.Hkv + w.kv_head;
  char* dst = static_cast<char*>(is_k ? kv.k : kv.v) + head * kv_head_bytes(KV, D);
  if constexpr (!kv_is_quantized(KV)) {
    for (int d = lane; d < D; d += 32) {
      if constexpr (KV == KvDType::F32) reinterpret_cast<float*>(dst)[d] = buf[d];
      else if constexpr (KV == KvDType::F16) reinterpret_cast<uint16_t*>(dst)[d] = float_to_f16(buf[d]);
      else reinterpret_cast<uint16_t*>(dst)[d] = float_to_bf16(buf[d]);
    }
  } else {
    float absmax = 0.f;
    for (int d = lane; d < D; d += 32) absmax = fmaxf(absmax, fabsf(buf[d]));
    absmax = warp_max(absmax);
    const float scale = kv_scale_for(absmax, KV);
    if constexpr (KV == KvDType::INT8) {
      for (int d = lane; d < D; d += 32) reinterpret_cast<int8_t*>(dst)[d] = int8_quantize(buf[d], scale);
    } else if constexpr (KV == KvDType::FP8_E4M3) {
      for (int d = lane; d < D; d += 32)
        reinterpret_cast<uint8_t*>(dst)[d] = fp8_e4m3_quantize(buf[d], scale);
    } else {  // INT4, two elements a byte
      for (int b = lane; b < (D + 1) / 2; b += 32) {
        const int32_t lo = int4_quantize(buf[2 * b], scale);
        const int32_t hi = 2 * b + 1 < D ? int4_quantize(buf[2 * b + 1], scale) : 0;
        reinterpret_cast<uint8_t*>(dst)[b] = int4_pack(lo, hi);
      }
    }
    if (lane == 0) (is_k ? kv.k_scale : kv.v_scale)[head] = scale;
  }
}

}  // namespace

void launch_qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                           const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out,
                           const Stream& stream, const RowRms& pending) {
  const int64_t T = qkv.dim(0);
  if (T == 0) return;
  NANOVLLM_CHECK(spec.head_dim <= kMaxHeadDim, "qkv_rope_store: head_dim ", spec.head_dim,
                 " is above the CUDA kernel's limit of ", kMaxHeadDim);
  QkvArgs a{int32_t(T), spec.num_heads, spec.num_kv_heads, spec.head_dim, nullptr, nullptr,
            spec.inv_freq.defined() ? spec.inv_freq.ptr<const float>() : nullptr, spec.norm_eps,
            positions.ptr<const int32_t>(), slot_mapping.ptr<const int64_t>(), spec.rotate_qk,
            pending.x, pending.width, pending.eps};
  const int heads = spec.num_heads + 2 * spec.num_kv_heads;
  dim3 grid(unsigned(T), ceil_div(heads, kWarps));
  const DType wdt = spec.q_norm.defined() ? spec.q_norm.dtype
                    : spec.k_norm.defined() ? spec.k_norm.dtype : qkv.dtype;
  dispatch_act(qkv.dtype, "qkv_rope_store", [&](auto tag) {
    using T_ = decltype(tag);
    auto with_w = [&](auto wtag) {
      using W = decltype(wtag);
      const W* qn = spec.q_norm.defined() ? spec.q_norm.ptr<const W>() : nullptr;
      const W* kn = spec.k_norm.defined() ? spec.k_norm.ptr<const W>() : nullptr;
      dispatch_kv(kv.dtype, [&](auto kvtag) {
        constexpr KvDType KV = decltype(kvtag)::value;
        auto launch = [&](auto kernel) {
          launch_kernel(kernel, grid, kWarps * 32, 0, stream, qkv.ptr<const T_>(), a, qn, kn, kv,
                        q_out.ptr<T_>());
        };
        if (spec.head_dim == 128) launch(qkv_rope_store_regs_kernel<T_, W, KV, 128>);
        else if (spec.head_dim == 64) launch(qkv_rope_store_regs_kernel<T_, W, KV, 64>);
        else launch(qkv_rope_store_kernel<T_, W, KV>);
      });
    };
    if (wdt == DType::F32) with_w(float{});
    else with_w(T_{});
  });
  check_launch("qkv_rope_store");
}

}  // namespace nanovllm::cuda
