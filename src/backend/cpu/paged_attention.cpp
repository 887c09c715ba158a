#include <algorithm>
#include <vector>

#include "backend/attention_checks.h"
#include "backend/cpu/attention_tile.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kv_dispatch.h"
#include "backend/cpu/tensor_checks.h"

namespace nanovllm::cpu {

namespace {

// Checks q/out/kv/meta.
void check_inputs(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                  const Tensor& out) {
  const char* op = "paged_attention";
  check_tensor(q, op, "q", DType::F32, 2);
  check_tensor(out, op, "out", DType::F32, 2);
  check_attention_operands(op, q, kv, meta, out);
  const int64_t T = q.dim(0);
  const int32_t B = meta.num_seqs;
  if (B == 0) return;
  NANOVLLM_CHECK(meta.cu_seqlens_q[0] == 0 && meta.cu_seqlens_q[B] == T, op,
                 ": cu_seqlens_q must run from 0 to the ", T, " rows of q, got ",
                 meta.cu_seqlens_q[0], " .. ", meta.cu_seqlens_q[B]);
  for (int32_t i = 0; i < B; ++i) {
    const int32_t begin = meta.cu_seqlens_q[i], end = meta.cu_seqlens_q[i + 1];
    const int32_t ctx = meta.context_lens[i];
    NANOVLLM_CHECK(begin <= end, op, ": cu_seqlens_q decreases at sequence ", i);
    NANOVLLM_CHECK(ctx >= end - begin, op, ": context_lens[", i, "] = ", ctx,
                   " is smaller than its ", end - begin, " query tokens");
    const int64_t blocks = (int64_t(ctx) + kv.block_size - 1) / kv.block_size;
    NANOVLLM_CHECK(blocks <= meta.max_blocks_per_seq, op, ": context_lens[", i, "] = ", ctx,
                   " needs ", blocks, " blocks, more than max_blocks_per_seq ",
                   meta.max_blocks_per_seq);
    const int32_t* table = meta.block_tables + int64_t(i) * meta.max_blocks_per_seq;
    for (int64_t b = 0; b < blocks; ++b)
      NANOVLLM_CHECK(table[b] >= 0 && table[b] < kv.num_blocks, op, ": block_tables[", i, ", ",
                     b, "] = ", table[b], " is outside [0, ", kv.num_blocks, ")");
  }
}

constexpr int64_t kTileRows = 8;  // query rows of one sequence that share each widened K / V row

// Query rows [begin, end) of sequence `seq`: one tile per KV head.
struct RowRange {
  int32_t seq;
  int64_t begin, end;
};

std::vector<RowRange> tile_rows(const AttentionMeta& meta) {
  std::vector<RowRange> tiles;
  for (int32_t i = 0; i < meta.num_seqs; ++i)
    for (int64_t t = meta.cu_seqlens_q[i]; t < meta.cu_seqlens_q[i + 1]; t += kTileRows)
      tiles.push_back({i, t, std::min<int64_t>(t + kTileRows, meta.cu_seqlens_q[i + 1])});
  return tiles;
}

template <KvDType T>
void attend_tile_baseline(const attention_tile::Tile& tile, const PagedKvLayer& kv, float scale,
                          attention_tile::Scratch& s) {
  attention_tile::attend_tile<T>(tile, kv, scale, s);
}

// The same compiled for AVX2 + FMA (the build's baseline is x86-64: SSE2): 8-wide widening of
// the stored values and fused multiply-adds.
template <KvDType T>
#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
#endif
void attend_tile_avx2(const attention_tile::Tile& tile, const PagedKvLayer& kv, float scale,
                      attention_tile::Scratch& s) {
  attention_tile::attend_tile<T>(tile, kv, scale, s);
}

}  // namespace

// out[T, Hq D] = causal softmax(q . k * scale) . v over the paged cache. Query row t of sequence
// i (local index j) sits at position context_lens[i] - q_len + j and sees keys [0, position].
void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                     float scale, Tensor out) {
  check_inputs(q, kv, meta, out);
  const int64_t D = kv.head_dim, Hkv = kv.num_kv_heads;
  const int64_t Hq = q.dim(1) / D, G = Hq / Hkv;
  const std::vector<RowRange> tiles = tile_rows(meta);
  const int64_t items = int64_t(tiles.size()) * Hkv;
  const bool avx2 = has_avx2_fma();
  dispatch_kv_dtype(kv.dtype, [&](auto tag) {
    constexpr KvDType kT = decltype(tag)::value;
    const auto attend = avx2 ? attend_tile_avx2<kT> : attend_tile_baseline<kT>;
#pragma omp parallel
    {
      attention_tile::Scratch scratch(kTileRows * G, kv.block_size, D);
      std::vector<const float*> q_vectors(size_t(kTileRows * G));
      std::vector<float*> out_vectors(size_t(kTileRows * G));
      int64_t num_keys[kTileRows];
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < items; ++item) {
        const RowRange& r = tiles[size_t(item / Hkv)];
        const int32_t kv_head = int32_t(item % Hkv);
        const int32_t i = r.seq;
        // Local row j of sequence i sits at position context_lens[i] - q_len + j.
        const int64_t first_position = meta.context_lens[i] - (meta.cu_seqlens_q[i + 1] - meta.cu_seqlens_q[i]);
        for (int64_t t = r.begin; t < r.end; ++t) {
          num_keys[t - r.begin] = first_position + (t - meta.cu_seqlens_q[i]) + 1;
          for (int64_t g = 0; g < G; ++g) {
            const int64_t offset = t * Hq * D + (kv_head * G + g) * D;
            q_vectors[size_t((t - r.begin) * G + g)] = q.ptr<float>() + offset;
            out_vectors[size_t((t - r.begin) * G + g)] = out.ptr<float>() + offset;
          }
        }
        const attention_tile::Tile tile{q_vectors.data(), out_vectors.data(), num_keys, r.end - r.begin,
                                        G, meta.block_tables + int64_t(i) * meta.max_blocks_per_seq,
                                        kv_head};
        attend(tile, kv, scale, scratch);
      }
    }
  });
}

}  // namespace nanovllm::cpu
