#pragma once
// What the two prefill / mixed attention kernels (CUDA cores: prefill_attention.cu, tensor cores:
// prefill_attention_tc.cu) share: the CTA tiling of query rows, the read of 8 decoded, scaled K
// and V elements of one key through the block table, and the launch with dynamic shared memory.
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/backend.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/launch.cuh"

namespace nanovllm::cuda {

// A CTA owns rows_per_cta query rows: bq consecutive query tokens of one sequence x gc query
// heads of one GQA group (row r = token r / gc, head r % gc of the chunk).
struct PrefillArgs {
  const int32_t* cu_seqlens_q;  // [B + 1]
  const int32_t* context_lens;  // [B]
  const int32_t* block_tables;  // [B, max_blocks_per_seq]
  int32_t max_blocks_per_seq;
  int32_t num_heads;  // Hq
  int32_t group;      // G
  int32_t gc;         // query heads of the group per CTA
  int32_t bq;         // query tokens per CTA
  int32_t tiles_per_seq;
  int32_t D;
  float scale;  // the softmax scale (x log2(e) for a kernel that exponentiates with exp2)
};

struct PrefillLaunch {
  PrefillArgs args;
  dim3 grid;  // (B * tiles_per_seq, Hkv, ceil(G / gc))
};

inline PrefillLaunch plan_prefill(const Tensor& q, const PagedKvLayer& kv,
                                  const AttentionMeta& meta, float scale, int rows_per_cta) {
  const int D = kv.head_dim;
  const int Hq = int(q.dim(1) / D), G = Hq / kv.num_kv_heads;
  const int gc = std::min(G, rows_per_cta);
  const int bq = rows_per_cta / gc;
  const int max_q = std::max(1, meta.max_query_len);
  const int tiles = (max_q + bq - 1) / bq;
  PrefillLaunch l;
  l.args = PrefillArgs{meta.cu_seqlens_q, meta.context_lens, meta.block_tables,
                       meta.max_blocks_per_seq, Hq, G, gc, bq, tiles, D, scale};
  l.grid = dim3(unsigned(int64_t(meta.num_seqs) * tiles), unsigned(kv.num_kv_heads),
                unsigned((G + gc - 1) / gc));
  return l;
}

// The query rows of this CTA (grid of plan_prefill): sequence, KV head, first query head of the
// group chunk, and the CTA's ntok query tokens starting at token tok0 of the sequence.
struct PrefillTile {
  int seq, kv_head, g0;
  int q_begin;    // row of the sequence's first query token in q
  int tok0, ntok;  // ntok <= 0: no query token here (the sequence has fewer tiles)
  int first_pos;  // position of the sequence's query token 0 (cached prefix + earlier chunks)
  int num_keys;   // keys visible to the tile's last token
};
__device__ __forceinline__ PrefillTile prefill_tile(const PrefillArgs& a) {
  PrefillTile t;
  t.seq = blockIdx.x / a.tiles_per_seq;
  t.kv_head = blockIdx.y;
  t.g0 = blockIdx.z * a.gc;
  t.q_begin = a.cu_seqlens_q[t.seq];
  const int q_len = a.cu_seqlens_q[t.seq + 1] - t.q_begin;
  t.tok0 = (blockIdx.x % a.tiles_per_seq) * a.bq;
  t.ntok = min(a.bq, q_len - t.tok0);
  t.first_pos = a.context_lens[t.seq] - q_len;
  t.num_keys = t.first_pos + t.tok0 + t.ntok;
  return t;
}

// The tile's query rows into Qs [rows][ld] of T (row i = token i / gc, head g0 + i % gc; rows
// past the tile's tokens or the group are zeros), by the CTA's `threads` threads.
template <class T>
__device__ __forceinline__ void load_query_tile(const T* __restrict__ q, const PrefillArgs& a,
                                                const PrefillTile& tile, int rows, int threads,
                                                T* Qs, int ld) {
  const int D = a.D, chunks = D / 8;  // 16-byte chunks of a row of T
  for (int idx = threadIdx.x; idx < rows * chunks; idx += threads) {
    const int i = idx / chunks, e = (idx % chunks) * 8;
    const int tk = i / a.gc, g = tile.g0 + i % a.gc;
    Vec<T, 8> v;
    if (i < a.bq * a.gc && tk < tile.ntok && g < a.group) {
      const int64_t t = tile.q_begin + tile.tok0 + tk;
      v = load_vec<T, 8>(q + (t * a.num_heads + int64_t(tile.kv_head) * a.group + g) * D + e);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) v.v[j] = from_f<T>(0.f);
    }
    store_vec<T, 8>(Qs + i * ld + e, v);
  }
}

// K and V elements [e, e + 8) of key `pos` of one KV head, decoded and scaled (kr, vr), read
// through the sequence's block table; zeros when pos >= num_keys.
template <KvDType KV>
__device__ __forceinline__ void load_key_value8(const PagedKvLayer& kv, const int32_t* table,
                                                int pos, int num_keys, int kv_head, int e,
                                                float kr[8], float vr[8]) {
  if (pos >= num_keys) {
#pragma unroll
    for (int i = 0; i < 8; ++i) kr[i] = vr[i] = 0.f;
    return;
  }
  const int bs = kv.block_size;
  const int64_t slot = int64_t(table[pos / bs]) * bs + pos % bs;
  const int64_t off = (slot * kv.num_kv_heads + kv_head) * kv_head_bytes(KV, kv.head_dim);
  kv_load8<KV>(static_cast<const char*>(kv.k) + off, e, kr);
  kv_load8<KV>(static_cast<const char*>(kv.v) + off, e, vr);
  if constexpr (kv_is_quantized(KV)) {
    const float ks = kv.k_scale[slot * kv.num_kv_heads + kv_head];
    const float vs = kv.v_scale[slot * kv.num_kv_heads + kv_head];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      kr[i] *= ks;
      vr[i] *= vs;
    }
  }
}

// Launches kernel<<<grid, threads, smem>>>(args...), raising its shared-memory limit first when
// it needs more than the default 48 KiB.
template <class Kernel, class... Args>
void launch_with_smem(Kernel kernel, dim3 grid, int threads, size_t smem, const Stream& stream,
                      const char* what, Args... args) {
  if (smem > 48 * 1024)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
               what);
  launch_kernel(kernel, grid, threads, smem, stream, args...);
}

}  // namespace nanovllm::cuda
