#pragma once
// Decode attention's launch arguments, how a context is cut into splits, and the final merge of
// the warps' softmax states into the output (or a split's partial): the parts of the kernel that
// do not depend on how the K/V loop is shaped (decode_attention.cuh).
#include <cuda_runtime.h>

#include <cfloat>

#include "backend/cuda/common.cuh"
#include "core/fast_divider.h"

namespace nanovllm::cuda::decode_detail {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMinSplitTokens = 32;  // the host never makes a split shorter than this on average

struct DecodeArgs {
  const int32_t* context_lens;  // [B]
  const int32_t* block_tables;  // [B, max_blocks_per_seq]
  int32_t max_blocks_per_seq;
  FastDivider block_size;  // position -> (cache block, offset)
  int32_t num_heads;  // Hq
  int32_t group;      // G = Hq / Hkv
  int32_t num_splits;
  int32_t split_align;  // a split's token range is a multiple of this (the CTA's tokens per iter)
  float scale;
  float* part_acc;  // [B, Hq, S, D] unnormalized outputs of each split
  float* part_ml;   // [B, Hq, S, 2] (running max, sum) of each split
  int32_t* split_counters;  // [B, Hkv], zero at rest: splits of a (sequence, head) done so far
};

// q (already x softmax scale) in two int8 levels for exact dp4a / int8-mma scores against INT8
// keys: x ~= unit / 254 x (254 hi + lo), unit = amax / 127, amax the head's max|x| (>= every
// |x[i]|), exact to 1/64516 of amax (finer than the BF16/F16 q itself). N values, 4 to a word
// (byte b of word j is element 4j + b). Returns unit / 254, the factor of an integer score.
template <int N, class Word>
__device__ __forceinline__ float split_query_int8(const float (&x)[N], float amax,
                                                  Word (&hi)[N / 4], Word (&lo)[N / 4]) {
  const float unit = amax / 127.f;                    // one step of hi
  const float inv = amax > 0.f ? 127.f / amax : 0.f;  // 1 / unit
#pragma unroll
  for (int j = 0; j < N / 4; ++j) {
    uint32_t hw = 0u, lw = 0u;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const float v = x[4 * j + b];
      const float h = fminf(fmaxf(rintf(v * inv), -127.f), 127.f);
      const float l = fminf(fmaxf(rintf((v - h * unit) * inv * 254.f), -127.f), 127.f);
      hw |= (uint32_t(int(h)) & 0xffu) << (8 * b);
      lw |= (uint32_t(int(l)) & 0xffu) << (8 * b);
    }
    hi[j] = Word(hw);
    lo[j] = Word(lw);
  }
  return unit / 254.f;
}

// Tokens of each split of a context of ctx tokens (the last split may get fewer, later ones none).
__device__ __forceinline__ int split_tokens(int ctx, const DecodeArgs& a) {
  const int per = (ctx + a.num_splits - 1) / a.num_splits;
  return (per + a.split_align - 1) / a.split_align * a.split_align;
}

// Splits of a context of ctx > 0 tokens that have tokens to attend (the others exit at once).
__device__ __forceinline__ int live_splits(int ctx, const DecodeArgs& a) {
  const int per = split_tokens(ctx, a);
  return min(a.num_splits, (ctx + per - 1) / per);
}

// What one CTA of the grid (Hkv, S, B) attends: its sequence, KV head and split, the split's
// token range [begin, end) of the sequence's ctx tokens, and q_row, the first q head of the group
// (rows of q / out [B, Hq, D]).
struct CtaWork {
  int seq, kv_head, split, ctx, begin, end;
  int64_t q_row;
};

__device__ __forceinline__ CtaWork cta_work(const DecodeArgs& a) {
  CtaWork w;
  w.seq = blockIdx.z;
  w.kv_head = blockIdx.x;
  w.split = blockIdx.y;
  w.ctx = a.context_lens[w.seq];
  const int per = split_tokens(w.ctx, a);
  w.begin = w.split * per;
  w.end = min(w.ctx, w.begin + per);
  w.q_row = int64_t(w.seq) * a.num_heads + int64_t(w.kv_head) * a.group;
  return w;
}

// True when a split has nothing to attend and its CTA is done: it exits at once (the last live
// split merges without it), except that split 0 of an empty context writes its zero output.
// With one split the CTA always runs (an empty context then outputs zeros through the merge).
template <class T, int D>
__device__ __forceinline__ bool empty_split_done(const CtaWork& w, const DecodeArgs& a,
                                                 T* __restrict__ out) {
  if (a.num_splits == 1 || w.begin < w.end) return false;
  if (w.ctx == 0 && w.split == 0)
    for (int idx = threadIdx.x; idx < a.group * D; idx += kThreads)
      out[w.q_row * D + idx] = from_f<T>(0.f);
  return true;
}

// Cache slot of token pos of a sequence whose block-table row is table.
__device__ __forceinline__ int64_t slot_of(const DecodeArgs& a, const int32_t* table, int pos) {
  const uint32_t block = a.block_size.quotient(uint32_t(pos));
  return int64_t(table[block]) * a.block_size.divisor +
         a.block_size.remainder(uint32_t(pos), block);
}

// Called by every thread of a split's CTA once its partials are written: the last live split of
// the (sequence, KV head) to arrive merges all of them into out [B, Hq, D] (no reduction kernel)
// and resets the counter for the next launch (a replayed graph reuses it).
template <class T, int D>
__device__ __forceinline__ void merge_splits_if_last(const DecodeArgs& a, int seq, int kv_head,
                                                     int64_t q_row, int ctx, T* __restrict__ out) {
  __shared__ bool is_last;
  __threadfence();  // this thread's partials are visible GPU-wide before the counter says so
  __syncthreads();
  const int live = live_splits(ctx, a);
  int32_t* counter = a.split_counters + int64_t(seq) * (a.num_heads / a.group) + kv_head;
  if (threadIdx.x == 0) {
    is_last = atomicAdd(counter, 1) + 1 == live;
    if (is_last) *counter = 0;
  }
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  for (int idx = threadIdx.x; idx < a.group * D; idx += kThreads) {
    const int64_t row = q_row + idx / D;
    const int d = idx % D;
    const float* ml = a.part_ml + row * a.num_splits * 2;
    float m = -FLT_MAX;
    for (int s = 0; s < live; ++s) m = fmaxf(m, __ldcg(ml + 2 * s));
    float l = 0.f, o = 0.f;
    for (int s = 0; s < live; ++s) {
      const float w = __expf(__ldcg(ml + 2 * s) - m);
      l += __ldcg(ml + 2 * s + 1) * w;
      o += __ldcg(a.part_acc + (row * a.num_splits + s) * D + d) * w;
    }
    out[row * D + d] = from_f<T>(l > 0.f ? o / l : 0.f);
  }
}

// s_acc [kWarps][MAXG][D]: each warp's unnormalized output of the group's heads; s_ml
// [kWarps][MAXG][2]: its (running max, sum) in natural-log units. Called by all kThreads threads
// after a __syncthreads: writes out [B, Hq, D] (one split) or the split's partials.
template <class T, int D, int MAXG>
__device__ __forceinline__ void merge_warps_and_store(const float (&s_acc)[kWarps][MAXG][D],
                                                      const float (&s_ml)[kWarps][MAXG][2], int G,
                                                      int64_t q_row, int split, const DecodeArgs& a,
                                                      T* __restrict__ out) {
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
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

}  // namespace nanovllm::cuda::decode_detail
