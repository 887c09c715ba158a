#pragma once
// Decode attention (every sequence has one query token): split-K flash-decoding over the paged
// cache. One CTA per (sequence, KV head, split) reads each K/V row of its token range once for
// all G query heads of the GQA group.
//
// Memory-level parallelism is the whole game (the KV reads are ~94% of a batch-256 decode step):
// a token's head row is covered by TPT = D / VEC threads, each issuing one 16-byte load (VEC
// elements: 8 for BF16/F16, 16 for INT8/FP8, 32 for INT4, 4 for F32; narrower only when the G x
// VEC registers of q and acc would not fit, see kVec). Each thread group takes kUnroll tokens per
// iteration and issues all their K and V loads before the first use, so a 128-thread CTA keeps
// 128 / TPT x kUnroll tokens (2 x kUnroll 16-byte loads per thread) in flight. Every group keeps
// its own online softmax in registers (no shared memory, no __syncthreads in the loop); the
// groups are merged once at the end (warp shuffles, then shared memory across the 4 warps).
// Quantized rows are decoded in registers: the K scale multiplies the score, the V scale the
// probability.
//
// Splits: the host picks S from the batch (enough CTAs to fill the GPU; S = 1 at batch 256) and
// the captured max_context_len (an upper bound). Each sequence's ACTUAL context is cut into S
// contiguous ranges of a multiple of the CTA's tokens per iteration, so with a graph captured for
// 4096 tokens the CTAs past a short context exit at once and cost a launch slot only; contexts
// longer than the captured bound stay correct (the ranges grow). A reduction kernel merges the
// splits (skipped when S = 1).
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_codec.cuh"

namespace nanovllm::cuda::decode_detail {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kUnroll = 4;           // tokens per thread group per iteration (K and V loads each)
constexpr int kMinSplitTokens = 32;  // the host never makes a split shorter than this on average

// Elements per thread: one 16-byte load, capped so that q and acc (2 x G x VEC floats) fit.
template <KvDType KV, int MAXG>
constexpr int kVec() {
  const int full = 128 / kv_elem_bits<KV>();
  const int cap = 64 / MAXG;
  return full < cap ? full : cap;
}

template <KvDType KV, int D, int MAXG>
constexpr int kTokensPerIter() {
  return kThreads / (D / kVec<KV, MAXG>()) * kUnroll;
}

struct DecodeArgs {
  const int32_t* context_lens;  // [B]
  const int32_t* block_tables;  // [B, max_blocks_per_seq]
  int32_t max_blocks_per_seq;
  int32_t num_heads;  // Hq
  int32_t group;      // G = Hq / Hkv
  int32_t num_splits;
  int32_t split_align;  // a split's token range is a multiple of this (the CTA's tokens per iter)
  float scale;
  float* part_acc;  // [B, Hq, S, D] unnormalized outputs of each split
  float* part_ml;   // [B, Hq, S, 2] (running max, sum) of each split
};

// Tokens of each split of a context of ctx tokens (the last split may get fewer, later ones none).
__device__ __forceinline__ int split_tokens(int ctx, const DecodeArgs& a) {
  const int per = (ctx + a.num_splits - 1) / a.num_splits;
  return (per + a.split_align - 1) / a.split_align * a.split_align;
}

// grid (B, Hkv, S), block kThreads. q, out: [B, Hq, D] of T.
template <class T, KvDType KV, int D, int MAXG>
__global__ void __launch_bounds__(kThreads)
    decode_attention_kernel(const T* __restrict__ q, PagedKvLayer kv, DecodeArgs a,
                            T* __restrict__ out) {
  constexpr int VEC = kVec<KV, MAXG>();
  constexpr int TPT = D / VEC;               // threads per token row
  constexpr int GROUPS = kThreads / TPT;     // token groups of the CTA
  constexpr int ROW_BYTES = VEC * kv_elem_bits<KV>() / 8;  // bytes one thread loads per row
  static_assert(TPT >= 1 && TPT <= 32 && 32 % TPT == 0, "a token row must fit in a warp");
  __shared__ float s_acc[kWarps][MAXG][D];  // each warp's merged acc
  __shared__ float s_ml[kWarps][MAXG][2];   // each warp's (max, sum)

  const int seq = blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int G = a.group;
  const int ctx = a.context_lens[seq];
  const int per = split_tokens(ctx, a);
  const int begin = split * per;
  const int end = min(ctx, begin + per);
  if (a.num_splits > 1 && begin >= end) return;  // nothing to attend (the reducer skips it)
  const int64_t q_row = int64_t(seq) * a.num_heads + int64_t(kv_head) * G;  // first q head of the group

  const int grp = tid / TPT;         // this thread's token group
  const int e0 = (tid % TPT) * VEC;  // its VEC elements of the head vector
  float qr[MAXG][VEC];  // q of the group's heads, pre-multiplied by the softmax scale
#pragma unroll
  for (int g = 0; g < MAXG; ++g)
#pragma unroll
    for (int i = 0; i < VEC; ++i)
      qr[g][i] = g < G ? to_f(q[(q_row + g) * D + e0 + i]) * a.scale : 0.f;

  float acc[MAXG][VEC], m[MAXG], l[MAXG];
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    m[g] = -FLT_MAX;  // finite: exp(m - m_new) stays 1 while a group has seen no token
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[g][i] = 0.f;
  }

  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const int64_t head_bytes = kv_head_bytes(KV, D);
  const char* kbase = static_cast<const char*>(kv.k) + int64_t(kv_head) * head_bytes + e0 * kv_elem_bits<KV>() / 8;
  const char* vbase = static_cast<const char*>(kv.v) + int64_t(kv_head) * head_bytes + e0 * kv_elem_bits<KV>() / 8;
  const int64_t slot_stride = int64_t(kv.num_kv_heads) * head_bytes;
  const int bs = kv.block_size;

  for (int t0 = begin; t0 < end; t0 += GROUPS * kUnroll) {
    // ---- issue every K and V load of the iteration ----
    KvRaw<ROW_BYTES> kraw[kUnroll], vraw[kUnroll];
    float ks[kUnroll], vs[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int pos = t0 + u * GROUPS + grp;
      valid[u] = pos < end;
      ks[u] = vs[u] = 1.f;
      if (valid[u]) {
        const int64_t slot = int64_t(table[pos / bs]) * bs + pos % bs;
        kraw[u] = kv_load_raw<ROW_BYTES>(kbase + slot * slot_stride);
        vraw[u] = kv_load_raw<ROW_BYTES>(vbase + slot * slot_stride);
        if constexpr (kv_is_quantized(KV)) {
          ks[u] = __ldcs(kv.k_scale + slot * kv.num_kv_heads + kv_head);
          vs[u] = __ldcs(kv.v_scale + slot * kv.num_kv_heads + kv_head);
        }
      } else {
#pragma unroll
        for (int i = 0; i < ROW_BYTES / 4; ++i) kraw[u].w[i] = vraw[u].w[i] = 0u;
      }
    }
    // ---- scores s[u][g] = (q_g . k_u) * k_scale_u (q already scaled) ----
    float s[kUnroll][MAXG];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[VEC];
      kv_decode_raw<KV, VEC>(kraw[u].w, kf);
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < VEC; ++i) d = fmaf(qr[g][i], kf[i], d);
        s[u][g] = d;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
#pragma unroll
        for (int o = TPT / 2; o > 0; o >>= 1) s[u][g] += __shfl_xor_sync(0xffffffffu, s[u][g], o);
        s[u][g] = valid[u] ? s[u][g] * ks[u] : -INFINITY;
      }
    // ---- online softmax of the group, then acc += p * v_scale * v ----
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mx = fmaxf(mx, s[u][g]);
      const float factor = __expf(m[g] - mx);
      m[g] = mx;
      l[g] *= factor;
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[g][i] *= factor;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float p = __expf(s[u][g] - mx);  // 0 for an invalid token
        l[g] += p;
        s[u][g] = p * vs[u];
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float vf[VEC];
      kv_decode_raw<KV, VEC>(vraw[u].w, vf);
#pragma unroll
      for (int g = 0; g < MAXG; ++g)
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[g][i] = fmaf(s[u][g], vf[i], acc[g][i]);
    }
  }

  // ---- merge the groups of each warp (lanes TPT apart), then the warps ----
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    float mx = m[g];
#pragma unroll
    for (int o = TPT; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    const float f = __expf(m[g] - mx);
    l[g] *= f;
#pragma unroll
    for (int o = TPT; o < 32; o <<= 1) l[g] += __shfl_xor_sync(0xffffffffu, l[g], o);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      float x = acc[g][i] * f;
#pragma unroll
      for (int o = TPT; o < 32; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
      acc[g][i] = x;
    }
    m[g] = mx;
  }
  if (lane < TPT) {
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) s_acc[warp][g][e0 + i] = acc[g][i];
      if (lane == 0) {
        s_ml[warp][g][0] = m[g];
        s_ml[warp][g][1] = l[g];
      }
    }
  }
  __syncthreads();
  for (int idx = tid; idx < G * D; idx += kThreads) {
    const int g = idx / D, d = idx % D;
    float mx = -FLT_MAX;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, s_ml[w][g][0]);
    float sum = 0.f, o = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = __expf(s_ml[w][g][0] - mx);
      sum += s_ml[w][g][1] * f;
      o += s_acc[w][g][d] * f;
    }
    if (a.num_splits == 1) {
      out[(q_row + g) * D + d] = from_f<T>(sum > 0.f ? o / sum : 0.f);
    } else {
      a.part_acc[((q_row + g) * a.num_splits + split) * D + d] = o;
      if (d == 0) {
        a.part_ml[((q_row + g) * a.num_splits + split) * 2] = mx;
        a.part_ml[((q_row + g) * a.num_splits + split) * 2 + 1] = sum;
      }
    }
  }
}

// grid (B, Hq), block D (<= 256 threads): merges the splits' partial softmax states.
template <class T>
__global__ void decode_reduce_kernel(DecodeArgs a, int D, T* __restrict__ out) {
  const int seq = blockIdx.x, head = blockIdx.y, d = threadIdx.x;
  const int64_t row = int64_t(seq) * a.num_heads + head;
  const int ctx = a.context_lens[seq];
  const int per = split_tokens(ctx, a);
  const int valid = per > 0 ? min(a.num_splits, (ctx + per - 1) / per) : 0;
  const float* ml = a.part_ml + row * a.num_splits * 2;
  float m = -FLT_MAX;
  for (int s = 0; s < valid; ++s) m = fmaxf(m, ml[2 * s]);
  float l = 0.f, o = 0.f;
  for (int s = 0; s < valid; ++s) {
    const float w = __expf(ml[2 * s] - m);
    l += ml[2 * s + 1] * w;
    o += a.part_acc[(row * a.num_splits + s) * D + d] * w;
  }
  out[row * D + d] = from_f<T>(l > 0.f ? o / l : 0.f);
}

template <class T, KvDType KV, int D, int MAXG>
void launch_typed(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                  DecodeArgs a, Tensor out, cudaStream_t stream) {
  a.split_align = kTokensPerIter<KV, D, MAXG>();
  dim3 grid(unsigned(meta.num_seqs), unsigned(kv.num_kv_heads), unsigned(a.num_splits));
  decode_attention_kernel<T, KV, D, MAXG>
      <<<grid, kThreads, 0, stream>>>(q.ptr<const T>(), kv, a, out.ptr<T>());
  if (a.num_splits > 1) {
    dim3 rgrid(unsigned(meta.num_seqs), unsigned(a.num_heads));
    decode_reduce_kernel<T><<<rgrid, D, 0, stream>>>(a, D, out.ptr<T>());
  }
}

// Calls f(KvTag, integral_constant D, integral_constant MAXG) for the kernel bucket of
// (kv dtype, head_dim, G).
template <class F>
void dispatch_bucket(KvDType kv_dtype, int D, int G, F&& f) {
  dispatch_kv(kv_dtype, [&](auto kvtag) {
    auto with_d = [&](auto dconst) {
      if (G == 1) f(kvtag, dconst, std::integral_constant<int, 1>{});
      else if (G == 2) f(kvtag, dconst, std::integral_constant<int, 2>{});
      else if (G <= 4) f(kvtag, dconst, std::integral_constant<int, 4>{});
      else f(kvtag, dconst, std::integral_constant<int, 8>{});
    };
    if (D == 64) with_d(std::integral_constant<int, 64>{});
    else with_d(std::integral_constant<int, 128>{});
  });
}

// Every KvDType x head_dim x G bucket for activation type T (one translation unit per T, so
// the 48 kernels of each T compile in parallel).
template <class T>
void launch_for_act(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                    const DecodeArgs& a, Tensor out, cudaStream_t stream) {
  dispatch_bucket(kv.dtype, kv.head_dim, a.group, [&](auto kvtag, auto dconst, auto gconst) {
    launch_typed<T, decltype(kvtag)::value, decltype(dconst)::value, decltype(gconst)::value>(
        q, kv, meta, a, out, stream);
  });
}

// CTAs of the bucket's kernel that one SM holds at once (registers and shared memory decide).
template <class T>
int ctas_per_sm_for_act(KvDType kv_dtype, int D, int G) {
  int n = 1;
  dispatch_bucket(kv_dtype, D, G, [&](auto kvtag, auto dconst, auto gconst) {
    check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                   &n,
                   decode_attention_kernel<T, decltype(kvtag)::value, decltype(dconst)::value,
                                           decltype(gconst)::value>,
                   kThreads, 0),
               "paged_attention (decode): occupancy query");
  });
  return std::max(n, 1);
}

#define NANOVLLM_DECODE_FOR_ACT(EXTERN, T)                                                  \
  EXTERN template void launch_for_act<T>(const Tensor&, const PagedKvLayer&,                \
                                         const AttentionMeta&, const DecodeArgs&, Tensor,   \
                                         cudaStream_t);                                     \
  EXTERN template int ctas_per_sm_for_act<T>(KvDType, int, int);
NANOVLLM_DECODE_FOR_ACT(extern, float)
NANOVLLM_DECODE_FOR_ACT(extern, __half)
NANOVLLM_DECODE_FOR_ACT(extern, __nv_bfloat16)

}  // namespace nanovllm::cuda::decode_detail
