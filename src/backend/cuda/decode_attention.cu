// Decode attention (every sequence has one query token): split-K flash-decoding over the paged
// cache. One CTA per (sequence, KV head, split) reads each K/V row of its context chunks once for
// all G query heads of the GQA group. Each token's head vector is read by a group of D/8 threads,
// 8 elements per thread (one 16-byte load for BF16/F16, 8 bytes for INT8/FP8, 4 for INT4), decoded
// in registers; the K scale multiplies the score, the V scale the probability. Context chunks of
// kChunk tokens are dealt round-robin to the splits, each split keeps an online softmax over its
// chunks, and a reduction pass merges the splits (skipped when there is one split).
#include <cfloat>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_codec.cuh"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 512;  // context tokens per chunk; logits of one chunk live in shared memory

struct DecodeArgs {
  const int32_t* context_lens;  // [B]
  const int32_t* block_tables;  // [B, max_blocks_per_seq]
  int32_t max_blocks_per_seq;
  int32_t num_heads;  // Hq
  int32_t group;      // G = Hq / Hkv
  int32_t num_splits;
  float scale;
  float* part_acc;  // [B, Hq, S, D] unnormalized outputs of each split
  float* part_ml;   // [B, Hq, S, 2] (running max, sum) of each split
};

// grid (B, Hkv, S), block kThreads. q, out: [B, Hq, D] of T.
template <class T, KvDType KV, int D, int MAXG>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(const T* __restrict__ q,
                                                                     PagedKvLayer kv, DecodeArgs a,
                                                                     T* __restrict__ out) {
  constexpr int TPT = D / 8;                 // threads per token
  constexpr int GROUPS = kThreads / TPT;     // tokens processed at once by the CTA
  constexpr int RED_FLOATS = GROUPS * MAXG * D;
  constexpr int LOGIT_FLOATS = MAXG * kChunk;
  constexpr int SMEM_FLOATS = RED_FLOATS > LOGIT_FLOATS ? RED_FLOATS : LOGIT_FLOATS;
  __shared__ float smem[SMEM_FLOATS];  // logits [MAXG][kChunk], later partial acc [GROUPS][MAXG][D]
  __shared__ float s_max[MAXG], s_sum[MAXG], s_factor[MAXG];

  const int seq = blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int G = a.group;
  const int ctx = a.context_lens[seq];
  const int num_chunks = (ctx + kChunk - 1) / kChunk;
  const int64_t q_row = int64_t(seq) * a.num_heads + int64_t(kv_head) * G;  // first q head of the group

  if (split >= num_chunks && !(split == 0 && a.num_splits == 1)) return;  // nothing to attend

  const int grp = tid / TPT;        // which token of a step this thread works on
  const int e0 = (tid % TPT) * 8;   // its 8 elements of the head vector
  float qr[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; ++g)
#pragma unroll
    for (int i = 0; i < 8; ++i)
      qr[g][i] = g < G ? to_f(q[(q_row + g) * D + e0 + i]) * a.scale : 0.f;

  float acc[MAXG][8];
#pragma unroll
  for (int g = 0; g < MAXG; ++g)
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
  if (tid < MAXG) {
    s_max[tid] = -FLT_MAX;
    s_sum[tid] = 0.f;
  }

  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const char* kbase = static_cast<const char*>(kv.k);
  const char* vbase = static_cast<const char*>(kv.v);
  const int64_t head_bytes = kv_head_bytes(KV, D);
  const int bs = kv.block_size;
  float* logits = smem;

  for (int chunk = split; chunk < num_chunks; chunk += a.num_splits) {
    const int start = chunk * kChunk;
    const int n = min(kChunk, ctx - start);
    // ---- scores of the chunk: logits[g][j] = (q_g . k_j) * k_scale * scale ----
    for (int j0 = 0; j0 < n; j0 += GROUPS) {
      const int j = j0 + grp;
      float dot[MAXG];
#pragma unroll
      for (int g = 0; g < MAXG; ++g) dot[g] = 0.f;
      float kscale = 1.f;
      if (j < n) {
        const int pos = start + j;
        const int64_t slot = int64_t(table[pos / bs]) * bs + pos % bs;
        float kr[8];
        kv_load8<KV>(kbase + (slot * kv.num_kv_heads + kv_head) * head_bytes, e0, kr);
        if constexpr (kv_is_quantized(KV)) kscale = kv.k_scale[slot * kv.num_kv_heads + kv_head];
#pragma unroll
        for (int g = 0; g < MAXG; ++g)
#pragma unroll
          for (int i = 0; i < 8; ++i) dot[g] += qr[g][i] * kr[i];
      }
#pragma unroll
      for (int g = 0; g < MAXG; ++g)
#pragma unroll
        for (int o = TPT / 2; o > 0; o >>= 1) dot[g] += __shfl_xor_sync(0xffffffffu, dot[g], o);
      if (j < n && tid % TPT == 0) {
#pragma unroll
        for (int g = 0; g < MAXG; ++g) logits[g * kChunk + j] = dot[g] * kscale;
      }
    }
    __syncthreads();
    // ---- online softmax update, one warp per head ----
    for (int g = warp; g < G; g += kThreads / 32) {
      float m = -FLT_MAX;
      for (int j = lane; j < n; j += 32) m = fmaxf(m, logits[g * kChunk + j]);
      m = warp_max(m);
      const float new_max = fmaxf(s_max[g], m);
      float sum = 0.f;
      for (int j = lane; j < n; j += 32) {
        const float p = __expf(logits[g * kChunk + j] - new_max);
        logits[g * kChunk + j] = p;
        sum += p;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float factor = __expf(s_max[g] - new_max);
        s_factor[g] = factor;
        s_sum[g] = s_sum[g] * factor + sum;
        s_max[g] = new_max;
      }
    }
    __syncthreads();
    // ---- acc_g += sum_j p_gj * v_scale_j * v_j ----
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      const float f = g < G ? s_factor[g] : 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] *= f;
    }
    for (int j = grp; j < n; j += GROUPS) {
      const int pos = start + j;
      const int64_t slot = int64_t(table[pos / bs]) * bs + pos % bs;
      float vr[8];
      kv_load8<KV>(vbase + (slot * kv.num_kv_heads + kv_head) * head_bytes, e0, vr);
      float vscale = 1.f;
      if constexpr (kv_is_quantized(KV)) vscale = kv.v_scale[slot * kv.num_kv_heads + kv_head];
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        const float p = g < G ? logits[g * kChunk + j] * vscale : 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] += p * vr[i];
      }
    }
    __syncthreads();
  }

  // ---- reduce acc over the GROUPS token groups ----
  float* red = smem;  // [GROUPS][MAXG][D]
#pragma unroll
  for (int g = 0; g < MAXG; ++g)
#pragma unroll
    for (int i = 0; i < 8; ++i) red[(grp * MAXG + g) * D + e0 + i] = acc[g][i];
  __syncthreads();
  for (int idx = tid; idx < G * D; idx += kThreads) {
    const int g = idx / D, d = idx % D;
    float s = 0.f;
#pragma unroll 4
    for (int r = 0; r < GROUPS; ++r) s += red[(r * MAXG + g) * D + d];
    if (a.num_splits == 1) {
      const float l = s_sum[g];
      out[(q_row + g) * D + d] = from_f<T>(l > 0.f ? s / l : 0.f);
    } else {
      a.part_acc[((q_row + g) * a.num_splits + split) * D + d] = s;
      if (d == 0) {
        a.part_ml[((q_row + g) * a.num_splits + split) * 2] = s_max[g];
        a.part_ml[((q_row + g) * a.num_splits + split) * 2 + 1] = s_sum[g];
      }
    }
  }
}

// grid (B, Hq), block D (<= 256 threads): merges the splits' partial softmax states.
template <class T>
__global__ void decode_reduce_kernel(const int32_t* __restrict__ context_lens, DecodeArgs a, int D,
                                     T* __restrict__ out) {
  const int seq = blockIdx.x, head = blockIdx.y, d = threadIdx.x;
  const int64_t row = int64_t(seq) * a.num_heads + head;
  const int num_chunks = (context_lens[seq] + kChunk - 1) / kChunk;
  const int valid = min(num_chunks, a.num_splits);
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
                  const DecodeArgs& a, Tensor out, cudaStream_t stream) {
  dim3 grid(unsigned(meta.num_seqs), unsigned(kv.num_kv_heads), unsigned(a.num_splits));
  decode_attention_kernel<T, KV, D, MAXG>
      <<<grid, kThreads, 0, stream>>>(q.ptr<const T>(), kv, a, out.ptr<T>());
  if (a.num_splits > 1) {
    dim3 rgrid(unsigned(meta.num_seqs), unsigned(a.num_heads));
    decode_reduce_kernel<T><<<rgrid, D, 0, stream>>>(meta.context_lens, a, D, out.ptr<T>());
  }
}

}  // namespace

int32_t decode_attention_splits(int32_t max_context_len) {
  return std::max<int32_t>(1, (max_context_len + kChunk - 1) / kChunk);
}

int64_t decode_attention_workspace_floats(int32_t num_seqs, int32_t num_heads, int32_t head_dim,
                                          int32_t num_splits) {
  if (num_splits <= 1) return 0;
  return int64_t(num_seqs) * num_heads * num_splits * (head_dim + 2);
}

bool decode_attention_supported(int32_t head_dim, int32_t group_size) {
  return (head_dim == 64 || head_dim == 128) && group_size >= 1 && group_size <= 8;
}

void launch_decode_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                             float scale, Tensor out, float* workspace, int32_t num_splits,
                             cudaStream_t stream) {
  if (meta.num_seqs == 0) return;
  const int D = kv.head_dim;
  const int Hq = int(q.dim(1) / D);
  const int G = Hq / kv.num_kv_heads;
  DecodeArgs a{meta.context_lens, meta.block_tables, meta.max_blocks_per_seq, Hq, G, num_splits,
               scale, workspace,
               workspace + int64_t(meta.num_seqs) * Hq * num_splits * D};
  dispatch_act(q.dtype, "paged_attention (decode)", [&](auto tag) {
    using T = decltype(tag);
    dispatch_kv(kv.dtype, [&](auto kvtag) {
      constexpr KvDType KV = decltype(kvtag)::value;
      auto with_d = [&](auto dconst) {
        constexpr int Dc = decltype(dconst)::value;
        if (G == 1) launch_typed<T, KV, Dc, 1>(q, kv, meta, a, out, stream);
        else if (G == 2) launch_typed<T, KV, Dc, 2>(q, kv, meta, a, out, stream);
        else if (G <= 4) launch_typed<T, KV, Dc, 4>(q, kv, meta, a, out, stream);
        else launch_typed<T, KV, Dc, 8>(q, kv, meta, a, out, stream);
      };
      if (D == 64) with_d(std::integral_constant<int, 64>{});
      else with_d(std::integral_constant<int, 128>{});
    });
  });
  check_launch("paged_attention (decode)");
}

}  // namespace nanovllm::cuda
