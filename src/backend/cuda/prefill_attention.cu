// Attention for any mix of query lengths (prefill, chunked prefill over cached prefixes, decode
// with head dims the decode kernel does not cover). BF16/F16 go to the tensor-core kernel
// (prefill_attention_tc.cu); this is the FlashAttention-2-style kernel on CUDA cores for F32
// models (no TF32) and head dims that are not multiples of 16. One CTA takes up to kRows query
// rows (BQ consecutive query tokens of one sequence x GC query heads of one GQA group) and walks
// the keys they may see (causal, through the block table) in tiles of kKeys tokens. Each K/V tile is decoded once into shared memory (the
// quantized formats' scale applied in registers as the tile is filled, never a copy in global
// memory) and shared by all rows; each warp keeps an online softmax for its rows.
#include <cfloat>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_codec.cuh"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerWarp = 4;
constexpr int kRows = kWarps * kRowsPerWarp;  // 16 query rows per CTA
constexpr int kKeys = 32;                     // keys per tile: one per lane when scoring

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
  float scale;
};

// grid (B * tiles_per_seq, Hkv, ceil(G / gc)), block kThreads, dynamic shared memory
// Ks [kKeys][D + 1] + Vs [kKeys][D] + Qs [kRows][D] floats. q, out: [T, Hq, D] of T.
// DPL: ceil(D / 32), the output elements each lane owns per row.
template <class T, KvDType KV, int DPL>
__global__ void __launch_bounds__(kThreads) prefill_attention_kernel(const T* __restrict__ q,
                                                                      PagedKvLayer kv,
                                                                      PrefillArgs a,
                                                                      T* __restrict__ out) {
  extern __shared__ float smem[];
  const int D = a.D;
  float* Ks = smem;                     // [kKeys][D + 1] (padded: lanes read different rows)
  float* Vs = Ks + kKeys * (D + 1);     // [kKeys][D]
  float* Qs = Vs + kKeys * D;           // [kRows][D], pre-multiplied by scale

  const int seq = blockIdx.x / a.tiles_per_seq, tile = blockIdx.x % a.tiles_per_seq;
  const int kv_head = blockIdx.y, g0 = blockIdx.z * a.gc;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int q_begin = a.cu_seqlens_q[seq];
  const int q_len = a.cu_seqlens_q[seq + 1] - q_begin;
  const int ctx = a.context_lens[seq];
  const int tok0 = tile * a.bq;
  if (tok0 >= q_len) return;
  const int ntok = min(a.bq, q_len - tok0);
  const int first_pos = ctx - q_len;  // position of query token 0 of the sequence

  // ---- load this CTA's query rows: row r = (token r / gc, head g0 + r % gc) ----
  for (int idx = tid; idx < kRows * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    const int tk = r / a.gc, g = g0 + r % a.gc;
    float v = 0.f;
    if (tk < ntok && g < a.group && r < a.bq * a.gc) {
      const int64_t t = q_begin + tok0 + tk;
      v = to_f(q[(t * a.num_heads + int64_t(kv_head) * a.group + g) * D + d]) * a.scale;
    }
    Qs[idx] = v;
  }

  int row_pos[kRowsPerWarp];  // causal limit (last visible key position) of each row; -1: none
  bool row_ok[kRowsPerWarp];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int r = warp * kRowsPerWarp + i;
    const int tk = r / a.gc, g = g0 + r % a.gc;
    row_ok[i] = r < a.bq * a.gc && tk < ntok && g < a.group;
    row_pos[i] = row_ok[i] ? first_pos + tok0 + tk : -1;
  }
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][DPL];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    m[i] = -FLT_MAX;
    l[i] = 0.f;
#pragma unroll
    for (int k = 0; k < DPL; ++k) acc[i][k] = 0.f;
  }

  const int num_keys = first_pos + tok0 + ntok;  // keys visible to the tile's last token
  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const char* kbase = static_cast<const char*>(kv.k);
  const char* vbase = static_cast<const char*>(kv.v);
  const int64_t head_bytes = kv_head_bytes(KV, D);
  const int bs = kv.block_size;
  const int vecs_per_row = D / 8;

  for (int kt = 0; kt < num_keys; kt += kKeys) {
    __syncthreads();  // previous tile fully consumed (and Qs written, on the first pass)
    for (int idx = tid; idx < kKeys * vecs_per_row; idx += kThreads) {
      const int j = idx / vecs_per_row, e = (idx % vecs_per_row) * 8;
      const int pos = kt + j;
      float kr[8], vr[8];
      if (pos < num_keys) {
        const int64_t slot = int64_t(table[pos / bs]) * bs + pos % bs;
        const int64_t off = (slot * kv.num_kv_heads + kv_head) * head_bytes;
        kv_load8<KV>(kbase + off, e, kr);
        kv_load8<KV>(vbase + off, e, vr);
        if constexpr (kv_is_quantized(KV)) {
          const float ks = kv.k_scale[slot * kv.num_kv_heads + kv_head];
          const float vs = kv.v_scale[slot * kv.num_kv_heads + kv_head];
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            kr[i] *= ks;
            vr[i] *= vs;
          }
        }
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) kr[i] = vr[i] = 0.f;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        Ks[j * (D + 1) + e + i] = kr[i];
        Vs[j * D + e + i] = vr[i];
      }
    }
    __syncthreads();

    // ---- scores: lane = key of the tile ----
    float s[kRowsPerWarp];
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) s[i] = 0.f;
    const float* krow = Ks + lane * (D + 1);
    const float* qrow = Qs + warp * kRowsPerWarp * D;
    for (int d = 0; d < D; ++d) {
      const float k = krow[d];
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) s[i] += qrow[i * D + d] * k;
    }
    const int key = kt + lane;
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
      if (!row_ok[i]) continue;  // uniform across the warp
      const bool visible = key <= row_pos[i];
      const float tile_max = warp_max(visible ? s[i] : -FLT_MAX);
      if (tile_max == -FLT_MAX) continue;  // no visible key in this tile for this row
      const float new_max = fmaxf(m[i], tile_max);
      const float p = visible ? __expf(s[i] - new_max) : 0.f;
      const float factor = __expf(m[i] - new_max);
      l[i] = l[i] * factor + warp_sum(p);
      m[i] = new_max;
#pragma unroll
      for (int k = 0; k < DPL; ++k) acc[i][k] *= factor;
      for (int j = 0; j < kKeys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int k = 0; k < DPL; ++k) {
          const int d = lane + 32 * k;
          if (d < D) acc[i][k] += pj * Vs[j * D + d];
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    if (!row_ok[i]) continue;
    const int r = warp * kRowsPerWarp + i;
    const int tk = r / a.gc, g = g0 + r % a.gc;
    const int64_t t = q_begin + tok0 + tk;
    T* o = out + (t * a.num_heads + int64_t(kv_head) * a.group + g) * D;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
#pragma unroll
    for (int k = 0; k < DPL; ++k) {
      const int d = lane + 32 * k;
      if (d < D) o[d] = from_f<T>(acc[i][k] * inv);
    }
  }
}

template <class T, KvDType KV, int DPL>
void launch_typed(const Tensor& q, const PagedKvLayer& kv, const PrefillArgs& a, dim3 grid,
                  Tensor out, cudaStream_t stream) {
  const size_t smem = sizeof(float) * (size_t(kKeys) * (a.D + 1) + size_t(kKeys) * a.D +
                                       size_t(kRows) * a.D);
  auto kernel = prefill_attention_kernel<T, KV, DPL>;
  if (smem > 48 * 1024)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
               "paged_attention (prefill): raising the shared-memory limit");
  kernel<<<grid, kThreads, smem, stream>>>(q.ptr<const T>(), kv, a, out.ptr<T>());
}

}  // namespace

void launch_prefill_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                              float scale, Tensor out, cudaStream_t stream) {
  if (meta.num_seqs == 0 || q.dim(0) == 0) return;
  const int D = kv.head_dim;
  if (prefill_attention_tensor_cores_supported(q.dtype, D)) {
    launch_prefill_attention_tensor_cores(q, kv, meta, scale, out, stream);
    return;
  }
  NANOVLLM_CHECK(D % 8 == 0 && D <= 256, "paged_attention: the CUDA kernels need head_dim a ",
                 "multiple of 8 and at most 256, got ", D);
  const int Hq = int(q.dim(1) / D), G = Hq / kv.num_kv_heads;
  const int gc = std::min(G, kRows);
  const int bq = kRows / gc;
  const int max_q = std::max(1, meta.max_query_len);
  const int tiles = (max_q + bq - 1) / bq;
  PrefillArgs a{meta.cu_seqlens_q, meta.context_lens, meta.block_tables, meta.max_blocks_per_seq,
                Hq, G, gc, bq, tiles, D, scale};
  dim3 grid(unsigned(int64_t(meta.num_seqs) * tiles), unsigned(kv.num_kv_heads),
            unsigned((G + gc - 1) / gc));
  dispatch_act(q.dtype, "paged_attention (prefill)", [&](auto tag) {
    using T = decltype(tag);
    dispatch_kv(kv.dtype, [&](auto kvtag) {
      constexpr KvDType KV = decltype(kvtag)::value;
      if (D <= 32) launch_typed<T, KV, 1>(q, kv, a, grid, out, stream);
      else if (D <= 64) launch_typed<T, KV, 2>(q, kv, a, grid, out, stream);
      else if (D <= 128) launch_typed<T, KV, 4>(q, kv, a, grid, out, stream);
      else launch_typed<T, KV, 8>(q, kv, a, grid, out, stream);
    });
  });
  check_launch("paged_attention (prefill)");
}

}  // namespace nanovllm::cuda
