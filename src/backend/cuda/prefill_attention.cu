// Attention for any mix of query lengths (prefill, chunked prefill over cached prefixes, decode
// with head dims the decode kernel does not cover). BF16/F16 go to the tensor-core kernel
// (prefill_attention_tc.cu); this is the FlashAttention-2-style kernel on CUDA cores for F32
// models (no TF32) and head dims that are not multiples of 16. One CTA takes up to kRows query
// rows (BQ consecutive query tokens of one sequence x GC query heads of one GQA group) and walks
// the keys they may see (causal, through the block table) in tiles of kKeys tokens. Each K/V
// tile is decoded once into shared memory (the quantized formats' scale applied in registers as
// the tile is filled, never a copy in global memory) and shared by all rows; each warp keeps an
// online softmax for its rows.
#include <cfloat>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_codec.cuh"
#include "backend/cuda/prefill_common.cuh"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerWarp = 4;
constexpr int kRows = kWarps * kRowsPerWarp;  // 16 query rows per CTA
constexpr int kKeys = 32;                     // keys per tile: one per lane when scoring

// grid (B * tiles_per_seq, Hkv, ceil(G / gc)), block kThreads, dynamic shared memory
// Ks [kKeys][D + 1] + Vs [kKeys][D] + Qs [kRows][D] floats. q, out: [T, Hq, D] of T.
// DPL: ceil(D / 32), the output elements each lane owns per row.
template <class T, KvDType KV, int DPL>
__global__ void __launch_bounds__(kThreads) prefill_attention_kernel(const T* __restrict__ q,
                                                                      PagedKvLayer kv,
                                                                      PrefillArgs a,
                                                                      T* __restrict__ out) {
  start_after_previous_kernel();
  extern __shared__ float smem[];
  const int D = a.D;
  float* Ks = smem;                     // [kKeys][D + 1] (padded: lanes read different rows)
  float* Vs = Ks + kKeys * (D + 1);     // [kKeys][D]
  float* Qs = Vs + kKeys * D;           // [kRows][D], pre-multiplied by scale

  const PrefillTile tile = prefill_tile(a);
  if (tile.ntok <= 0) return;
  const int kv_head = tile.kv_head, g0 = tile.g0, q_begin = tile.q_begin, tok0 = tile.tok0,
            ntok = tile.ntok, first_pos = tile.first_pos, num_keys = tile.num_keys;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t* table = a.block_tables + int64_t(tile.seq) * a.max_blocks_per_seq;

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

  const int vecs_per_row = D / 8;

  for (int kt = 0; kt < num_keys; kt += kKeys) {
    __syncthreads();  // previous tile fully consumed (and Qs written, on the first pass)
    for (int idx = tid; idx < kKeys * vecs_per_row; idx += kThreads) {
      const int j = idx / vecs_per_row, e = (idx % vecs_per_row) * 8;
      float kr[8], vr[8];
      load_key_value8<KV>(kv, table, kt + j, num_keys, kv_head, e, kr, vr);
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
void launch_typed(const Tensor& q, const PagedKvLayer& kv, const PrefillLaunch& l, Tensor out,
                  const Stream& stream) {
  const int D = l.args.D;
  const size_t smem = sizeof(float) * (size_t(kKeys) * (D + 1) + size_t(kKeys) * D +
                                       size_t(kRows) * D);
  launch_with_smem(prefill_attention_kernel<T, KV, DPL>, l.grid, kThreads, smem, stream,
                   "paged_attention (prefill): raising the shared-memory limit",
                   q.ptr<const T>(), kv, l.args, out.ptr<T>());
}

}  // namespace

void launch_prefill_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                              float scale, Tensor out, const Stream& stream) {
  if (meta.num_seqs == 0 || q.dim(0) == 0) return;
  const int D = kv.head_dim;
  if (prefill_attention_mma_supported(q.dtype, D)) {
    launch_prefill_attention_mma(q, kv, meta, scale, out, stream);
    return;
  }
  if (prefill_attention_tensor_cores_supported(q.dtype, D)) {
    launch_prefill_attention_tensor_cores(q, kv, meta, scale, out, stream);
    return;
  }
  NANOVLLM_CHECK(D % 8 == 0 && D <= 256, "paged_attention: the CUDA kernels need head_dim a ",
                 "multiple of 8 and at most 256, got ", D);
  const PrefillLaunch l = plan_prefill(q, kv, meta, scale, kRows);
  dispatch_act(q.dtype, "paged_attention (prefill)", [&](auto tag) {
    using T = decltype(tag);
    dispatch_kv(kv.dtype, [&](auto kvtag) {
      constexpr KvDType KV = decltype(kvtag)::value;
      if (D <= 32) launch_typed<T, KV, 1>(q, kv, l, out, stream);
      else if (D <= 64) launch_typed<T, KV, 2>(q, kv, l, out, stream);
      else if (D <= 128) launch_typed<T, KV, 4>(q, kv, l, out, stream);
      else launch_typed<T, KV, 8>(q, kv, l, out, stream);
    });
  });
  check_launch("paged_attention (prefill)");
}

}  // namespace nanovllm::cuda
