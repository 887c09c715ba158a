#pragma once
// Decode attention (every sequence has one query token): split-K flash-decoding over the paged
// cache. One CTA per (sequence, KV head, split) reads each K/V row of its token range once for
// all G query heads of the GQA group.
//
// The KV reads are ~94% of a batch-256 decode step's bytes, so the loop needs bytes in flight and
// few instructions per byte (ncu finds both BF16 and INT8 near issue-bound): a token's head row
// is covered by TPT = D / VEC threads, each issuing one 16-byte load (VEC elements: 8 for
// BF16/F16, 16 for INT8/FP8, 32 for INT4, 4 for F32; narrower only when the G x VEC registers of
// q and acc would not fit, see kVec). Each thread group takes UNROLL tokens per iteration and
// issues all their K and V loads before the first use, so a 128-thread CTA keeps
// 128 / TPT x UNROLL tokens (2 x UNROLL 16-byte loads per thread) in flight. Every group keeps
// its own online softmax in registers (no shared memory, no __syncthreads in the loop); the
// groups are merged once at the end (warp shuffles, then shared memory across the 4 warps).
// Quantized rows are decoded in registers: the K scale multiplies the score, the V scale the
// probability. INT8 scores are integer dot products (dp4a) of the stored K bytes with q in two
// int8 levels (see ThreadSoftmax): the kernel is issue-bound (ncu: 0.69 warp-instructions per
// scheduler-cycle), and this removes the K conversion and two thirds of the score instructions.
//
// Splits: the host picks S from the batch (enough CTAs for two waves; S = 1 beyond that) and
// the captured max_context_len (an upper bound). Each sequence's ACTUAL context is cut into S
// contiguous ranges of a multiple of the CTA's tokens per iteration, so with a graph captured for
// 4096 tokens the CTAs past a short context exit at once and cost a launch slot only; contexts
// longer than the captured bound stay correct (the ranges grow). The last split of a (sequence,
// KV head) to finish merges the splits' partials (an arrival counter; no reduction kernel).
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention_common.cuh"
#include "backend/cuda/decode_attention_mma.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/kv_codec.cuh"

namespace nanovllm::cuda::decode_detail {

// Elements per thread: one 16-byte load, capped so that q and acc (2 x G x VEC floats) fit.
template <KvDType KV, int MAXG>
constexpr int kVec() {
  const int full = 128 / kv_elem_bits<KV>();
  const int cap = 64 / MAXG;
  return full < cap ? full : cap;
}

// How the loop is unrolled: VEC elements per thread and load, UNROLL tokens per thread group and
// iteration (all their K and V loads issued before the first use), and the CTAs per SM the
// register allocation must allow (0: no constraint; the compiler's choice).
template <int VEC_, int UNROLL_, int MIN_CTAS_>
struct LoopConfig {
  static constexpr int VEC = VEC_, UNROLL = UNROLL_, MIN_CTAS = MIN_CTAS_;
};
// Production choice per bucket, from tools/decode_attention_bench on the H200
// (docs/cuda_kernels.md): 16-bit caches take 2 tokens per iteration (64 registers, 8 CTAs per
// SM: a batch of 128 x 8 heads fits in one wave; 3.99 vs 3.40 TB/s at 128 x 1024, equal at 256 x
// 1024 and 32 x 4096); INT8 keeps 4 (every narrower or deeper variant measured slower).
template <KvDType KV, int MAXG>
using DefaultLoop = LoopConfig<kVec<KV, MAXG>(),
                               (KV == KvDType::BF16 || KV == KvDType::F16) ? 2 : 4, 0>;

// The kernel each bucket runs: INT8 under 16-bit activations on tensor cores
// (decode_attention_mma.cuh; measured in tools/decode_attention_bench against the CUDA-core
// loop), FP8 and INT4 too when FP8_INT4_MMA; everything else (16-bit caches; F32 models: exact
// FP32 math) on the CUDA-core loop.
template <class T, KvDType KV, int MAXG, bool FP8_INT4_MMA>
using ProductionLoop =
    std::conditional_t<!std::is_same_v<T, float> &&
                           (KV == KvDType::INT8 || (FP8_INT4_MMA && kv_is_quantized(KV))),
                       MmaLoop<4>, DefaultLoop<KV, MAXG>>;

// Compile-time shape of a (KV dtype, head_dim, loop) bucket: a token's head row is covered by
// TPT threads of VEC elements (ROW_BYTES bytes) each; the CTA has GROUPS token groups.
template <KvDType KV, int D, class Loop>
struct RowShape {
  static constexpr int VEC = Loop::VEC;
  static constexpr int UNROLL = Loop::UNROLL;
  static constexpr int TPT = D / VEC;
  static constexpr int GROUPS = kThreads / TPT;
  static constexpr int ROW_BYTES = VEC * kv_elem_bits<KV>() / 8;
  static constexpr int STEP = GROUPS * UNROLL;  // tokens per CTA iteration
  static_assert(TPT >= 1 && TPT <= 32 && 32 % TPT == 0, "a token row must fit in a warp");
  static_assert(ROW_BYTES == 4 || ROW_BYTES == 8 || ROW_BYTES == 16, "one 4/8/16-byte load per row");
};

// One thread's online-softmax state: q and acc for its VEC elements of the G heads.
// Float formats keep q x scale in qr. INT8 keeps it as two int8 levels, 4 a word:
// q x scale ~= qscale x (254 x hi + lo), exact to 1/64516 of the head's max|q| (finer than the
// BF16/F16 q itself), so a score is an exact integer dot product of the stored K bytes (dp4a)
// with no conversion of K at all.
template <int VEC, int MAXG>
struct ThreadSoftmax {
  float qr[MAXG][VEC];
  int32_t qhi[MAXG][VEC / 4], qlo[MAXG][VEC / 4];
  float qscale[MAXG];
  float acc[MAXG][VEC];
  float m[MAXG], l[MAXG];
};

// Scores of U tokens for the G heads, summed over the TPT threads of each token row, before the
// K scale: s[u][g] = q . k.
template <KvDType KV, int VEC, int TPT, int MAXG, int ROW_BYTES, int U>
__device__ __forceinline__ void score_tokens(const ThreadSoftmax<VEC, MAXG>& st,
                                             const KvRaw<ROW_BYTES> (&kraw)[U],
                                             float (&s)[U][MAXG]) {
  if constexpr (KV == KvDType::INT8) {
    int d[U][MAXG];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        int hi = 0, lo = 0;
#pragma unroll
        for (int i = 0; i < VEC / 4; ++i) {
          hi = __dp4a(int(kraw[u].w[i]), st.qhi[g][i], hi);
          lo = __dp4a(int(kraw[u].w[i]), st.qlo[g][i], lo);
        }
        d[u][g] = hi * 254 + lo;  // |d| <= 128 x 127 x 32385 < 2^31 over a whole row
      }
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
#pragma unroll
        for (int o = TPT / 2; o > 0; o >>= 1) d[u][g] += __shfl_xor_sync(0xffffffffu, d[u][g], o);
        s[u][g] = float(d[u][g]) * st.qscale[g];
      }
  } else {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[VEC];
      kv_decode_raw<KV, VEC>(kraw[u].w, kf);
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < VEC; ++i) d = fmaf(st.qr[g][i], kf[i], d);
        s[u][g] = d;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int g = 0; g < MAXG; ++g)
#pragma unroll
        for (int o = TPT / 2; o > 0; o >>= 1) s[u][g] += __shfl_xor_sync(0xffffffffu, s[u][g], o);
  }
}

// U tokens of one group: raw K/V rows (zero where !valid), their scales (1 if not quantized).
// Scores, the online-softmax update (acc rescaled only when the running max grows), then
// acc += p * v_scale * v.
template <KvDType KV, int VEC, int TPT, int MAXG, int ROW_BYTES, int U>
__device__ __forceinline__ void attend_tokens(ThreadSoftmax<VEC, MAXG>& st,
                                              const KvRaw<ROW_BYTES> (&kraw)[U],
                                              const KvRaw<ROW_BYTES> (&vraw)[U],
                                              const float (&ks)[U], const float (&vs)[U],
                                              const bool (&valid)[U]) {
  float s[U][MAXG];
  score_tokens<KV, VEC, TPT, MAXG, ROW_BYTES, U>(st, kraw, s);
#pragma unroll
  for (int u = 0; u < U; ++u)
#pragma unroll
    for (int g = 0; g < MAXG; ++g) s[u][g] = valid[u] ? s[u][g] * ks[u] : -INFINITY;
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    float mx = st.m[g];
#pragma unroll
    for (int u = 0; u < U; ++u) mx = fmaxf(mx, s[u][g]);
    if (mx > st.m[g]) {
      const float factor = __expf(st.m[g] - mx);
      st.m[g] = mx;
      st.l[g] *= factor;
#pragma unroll
      for (int i = 0; i < VEC; ++i) st.acc[g][i] *= factor;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float p = __expf(s[u][g] - st.m[g]);  // 0 for an invalid token
      st.l[g] += p;
      s[u][g] = p * vs[u];
    }
  }
#pragma unroll
  for (int u = 0; u < U; ++u) {
    float vf[VEC];
    kv_decode_raw<KV, VEC>(vraw[u].w, vf);
#pragma unroll
    for (int g = 0; g < MAXG; ++g)
#pragma unroll
      for (int i = 0; i < VEC; ++i) st.acc[g][i] = fmaf(s[u][g], vf[i], st.acc[g][i]);
  }
}

// Loads this thread's VEC elements of the G query heads (rows q_row + g of q [.., D]) into st,
// multiplied by the softmax scale; INT8 also splits them into the two int8 levels, with the
// head's max|q| taken over the TPT threads of the row.
template <class T, KvDType KV, int D, int VEC, int TPT, int MAXG>
__device__ __forceinline__ void load_query(ThreadSoftmax<VEC, MAXG>& st, const T* __restrict__ q,
                                           int64_t q_row, int G, int e0, float scale) {
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    float qf[VEC];
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      qf[i] = g < G ? to_f(q[(q_row + g) * D + e0 + i]) * scale : 0.f;
      amax = fmaxf(amax, fabsf(qf[i]));
      if constexpr (KV != KvDType::INT8) st.qr[g][i] = qf[i];
    }
    if constexpr (KV == KvDType::INT8) {
#pragma unroll
      for (int o = TPT / 2; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
      st.qscale[g] = split_query_int8<VEC>(qf, amax, st.qhi[g], st.qlo[g]);
    }
#pragma unroll
    for (int i = 0; i < VEC; ++i) st.acc[g][i] = 0.f;
    st.m[g] = -FLT_MAX;  // finite: exp(m - m_new) stays 1 while a group has seen no token
    st.l[g] = 0.f;
  }
}

// grid (Hkv, S, B), block kThreads. q, out: [B, Hq, D] of T.
template <class T, KvDType KV, int D, int MAXG, class Loop>
__global__ void __launch_bounds__(kThreads, Loop::MIN_CTAS)
    decode_attention_kernel(const T* __restrict__ q, PagedKvLayer kv, DecodeArgs a,
                            T* __restrict__ out) {
  start_after_previous_kernel();
  using Shape = RowShape<KV, D, Loop>;
  constexpr int VEC = Shape::VEC, TPT = Shape::TPT, GROUPS = Shape::GROUPS, U = Shape::UNROLL;
  constexpr int ROW_BYTES = Shape::ROW_BYTES, STEP = Shape::STEP;
  __shared__ float s_acc[kWarps][MAXG][D];  // each warp's merged acc
  __shared__ float s_ml[kWarps][MAXG][2];   // each warp's (max, sum)

  const CtaWork w = cta_work(a);
  if (empty_split_done<T, D>(w, a, out)) return;
  const int seq = w.seq, kv_head = w.kv_head, split = w.split, ctx = w.ctx, end = w.end;
  const int64_t q_row = w.q_row;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int G = a.group;

  const int grp = tid / TPT;         // this thread's token group
  const int e0 = (tid % TPT) * VEC;  // its VEC elements of the head vector
  ThreadSoftmax<VEC, MAXG> st;
  load_query<T, KV, D, VEC, TPT, MAXG>(st, q, q_row, G, e0, a.scale);

  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const int64_t head_bytes = kv_head_bytes(KV, D);
  const char* kbase = static_cast<const char*>(kv.k) + int64_t(kv_head) * head_bytes + e0 * kv_elem_bits<KV>() / 8;
  const char* vbase = static_cast<const char*>(kv.v) + int64_t(kv_head) * head_bytes + e0 * kv_elem_bits<KV>() / 8;
  const int64_t slot_stride = int64_t(kv.num_kv_heads) * head_bytes;

  for (int t0 = w.begin; t0 < end; t0 += STEP) {
    KvRaw<ROW_BYTES> kraw[U], vraw[U];
    float ks[U], vs[U];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {  // issue every load of the iteration before any use
      const int pos = t0 + u * GROUPS + grp;
      valid[u] = pos < end;
      ks[u] = vs[u] = 1.f;
      if (valid[u]) {
        const int64_t slot = slot_of(a, table, pos);
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
    attend_tokens<KV, VEC, TPT, MAXG, ROW_BYTES, U>(st, kraw, vraw, ks, vs, valid);
  }

  // ---- merge the groups of each warp (lanes TPT apart), then the warps ----
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    float mx = st.m[g];
#pragma unroll
    for (int o = TPT; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    const float f = __expf(st.m[g] - mx);
    st.l[g] *= f;
#pragma unroll
    for (int o = TPT; o < 32; o <<= 1) st.l[g] += __shfl_xor_sync(0xffffffffu, st.l[g], o);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      float x = st.acc[g][i] * f;
#pragma unroll
      for (int o = TPT; o < 32; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
      st.acc[g][i] = x;
    }
    st.m[g] = mx;
  }
  if (lane < TPT) {
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) s_acc[warp][g][e0 + i] = st.acc[g][i];
      if (lane == 0) {
        s_ml[warp][g][0] = st.m[g];
        s_ml[warp][g][1] = st.l[g];
      }
    }
  }
  __syncthreads();
  merge_warps_and_store<T, D, MAXG>(s_acc, s_ml, G, q_row, split, a, out);
  if (a.num_splits > 1) merge_splits_if_last<T, D>(a, seq, kv_head, q_row, ctx, out);
}

// The kernel function of a bucket and loop.
template <class T, KvDType KV, int D, int MAXG, class Loop>
constexpr auto kernel_of() {
  if constexpr (is_mma_loop<Loop>)
    return decode_attention_mma_kernel<T, KV, D, MAXG, Loop>;
  else
    return decode_attention_kernel<T, KV, D, MAXG, Loop>;
}

template <class T, KvDType KV, int D, int MAXG, class Loop>
void launch_typed(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                  DecodeArgs a, Tensor out, const Stream& stream) {
  if constexpr (is_mma_loop<Loop>)
    a.split_align = Loop::STEP;
  else
    a.split_align = RowShape<KV, D, Loop>::STEP;
  // A sequence's CTAs are consecutive in dispatch order (x fastest): rows ordered longest first
  // start the longest work first.
  dim3 grid(unsigned(kv.num_kv_heads), unsigned(a.num_splits), unsigned(meta.num_seqs));
  launch_kernel(kernel_of<T, KV, D, MAXG, Loop>(), grid, kThreads, 0, stream, q.ptr<const T>(),
                kv, a, out.ptr<T>());
}

// CTAs of a bucket's kernel that one SM holds at once (registers and shared memory decide).
template <class T, KvDType KV, int D, int MAXG, class Loop>
int ctas_per_sm() {
  int n = 1;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel_of<T, KV, D, MAXG, Loop>(),
                                                           kThreads, 0),
             "paged_attention (decode): occupancy query");
  return std::max(n, 1);
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

// Calls f(the production loop type) for the FP8_INT4_MMA choice made at run time.
template <class T, KvDType KV, int MAXG, class F>
void with_production_loop(bool fp8_int4_mma, F&& f) {
  if (fp8_int4_mma) f(ProductionLoop<T, KV, MAXG, true>{});
  else f(ProductionLoop<T, KV, MAXG, false>{});
}

// Every KvDType x head_dim x G bucket for activation type T (one translation unit per T, so
// its kernels compile in parallel with the other types').
template <class T>
void launch_for_act(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                    const DecodeArgs& a, bool fp8_int4_mma, Tensor out, const Stream& stream) {
  dispatch_bucket(kv.dtype, kv.head_dim, a.group, [&](auto kvtag, auto dconst, auto gconst) {
    constexpr KvDType KV = decltype(kvtag)::value;
    constexpr int D = decltype(dconst)::value, G = decltype(gconst)::value;
    with_production_loop<T, KV, G>(fp8_int4_mma, [&](auto loop) {
      launch_typed<T, KV, D, G, decltype(loop)>(q, kv, meta, a, out, stream);
    });
  });
}

// CTAs of the bucket's kernel that one SM holds at once.
template <class T>
int ctas_per_sm_for_act(KvDType kv_dtype, int D, int G, bool fp8_int4_mma) {
  int n = 1;
  dispatch_bucket(kv_dtype, D, G, [&](auto kvtag, auto dconst, auto gconst) {
    constexpr KvDType KV = decltype(kvtag)::value;
    constexpr int Dc = decltype(dconst)::value, Gc = decltype(gconst)::value;
    with_production_loop<T, KV, Gc>(fp8_int4_mma, [&](auto loop) {
      n = ctas_per_sm<T, KV, Dc, Gc, decltype(loop)>();
    });
  });
  return n;
}

#define NANOVLLM_DECODE_FOR_ACT(EXTERN, T)                                                  \
  EXTERN template void launch_for_act<T>(const Tensor&, const PagedKvLayer&,                \
                                         const AttentionMeta&, const DecodeArgs&, bool,     \
                                         Tensor, const Stream&);                            \
  EXTERN template int ctas_per_sm_for_act<T>(KvDType, int, int, bool);
NANOVLLM_DECODE_FOR_ACT(extern, float)
NANOVLLM_DECODE_FOR_ACT(extern, __half)
NANOVLLM_DECODE_FOR_ACT(extern, __nv_bfloat16)

}  // namespace nanovllm::cuda::decode_detail
