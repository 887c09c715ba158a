#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/attention_checks.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kv_dispatch.h"
#include "backend/cpu/tensor_checks.h"
#include "core/kv_quant.h"

namespace nanovllm::cpu {

namespace {

// Checks q/out/kv/meta and returns the sequence of each query row ([T]).
std::vector<int32_t> check_inputs(const Tensor& q, const PagedKvLayer& kv,
                                  const AttentionMeta& meta, const Tensor& out) {
  const char* op = "paged_attention";
  check_tensor(q, op, "q", DType::F32, 2);
  check_tensor(out, op, "out", DType::F32, 2);
  check_attention_operands(op, q, kv, meta, out);
  const int64_t T = q.dim(0);
  const int32_t B = meta.num_seqs;
  std::vector<int32_t> seq_of(size_t(T), 0);
  if (B == 0) return seq_of;
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
    for (int32_t t = begin; t < end; ++t) seq_of[size_t(t)] = i;
  }
  return seq_of;
}

// Always inlined, as is attend_row, so that attend_row_avx2 compiles all of them for AVX2 + FMA
// (a target function inlines only what it is given).
#define NANOVLLM_INLINE inline __attribute__((always_inline))

// out[D] = the stored (unscaled) values of one cache row, widened to float.
template <KvDType T>
NANOVLLM_INLINE void widen_row(const void* row, int64_t D, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(row);
  if constexpr (T == KvDType::INT4) {
#pragma omp simd
    for (int64_t i = 0; i < D / 2; ++i) {
      out[2 * i] = float(int4_low(b[i]));
      out[2 * i + 1] = float(int4_high(b[i]));
    }
    if (D & 1) out[D - 1] = float(int4_low(b[D / 2]));
  } else {
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) out[i] = kv_load_raw(row, T, i);
  }
}

// Eight floats as one vector (GCC / Clang vector extension: one AVX register in the AVX2 copy,
// two SSE registers in the baseline one).
typedef float Float8 __attribute__((vector_size(32)));

// a[D] . b[D] with four independent 8-wide partial sums (a single chain waits on every
// multiply-add's latency), combined in a fixed order.
NANOVLLM_INLINE float dot(const float* a, const float* b, int64_t D) {
  Float8 acc[4] = {}, x, y;
  int64_t i = 0;
  for (; i + 32 <= D; i += 32)
    for (int u = 0; u < 4; ++u) {
      std::memcpy(&x, a + i + 8 * u, sizeof x);
      std::memcpy(&y, b + i + 8 * u, sizeof y);
      acc[u] += x * y;
    }
  for (; i + 8 <= D; i += 8) {
    std::memcpy(&x, a + i, sizeof x);
    std::memcpy(&y, b + i, sizeof y);
    acc[0] += x * y;
  }
  const Float8 v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  float s = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
  for (; i < D; ++i) s += a[i] * b[i];
  return s;
}

// acc[D] += w * x[D]
NANOVLLM_INLINE void axpy(float w, const float* x, int64_t D, float* acc) {
#pragma omp simd
  for (int64_t i = 0; i < D; ++i) acc[i] += w * x[i];
}

// Per-thread scratch of one work item: scores [G, block_size], running max/sum [G], acc [G, D],
// one cache row widened [D].
struct Scratch {
  std::vector<float> scores, max;
  std::vector<double> sum;
  std::vector<float> acc, row;
  Scratch(int64_t G, int64_t bs, int64_t D)
      : scores(size_t(G * bs)), max(size_t(G)), sum(size_t(G)), acc(size_t(G * D)), row(size_t(D)) {}
};

// One (query row, KV head) work item: the G query heads of the GQA group share each K/V row,
// widened once for all of them. Softmax is online per cache block: the block's scores, then one
// rescale of each head's running (max, sum, acc). Quantized scales fold in: s = (q . k_q) *
// k_scale * scale, and the weight of v_q is p * v_scale; nothing is dequantized into memory
// beyond the one row being read.
template <KvDType T>
NANOVLLM_INLINE void attend_row(const float* q_row, const PagedKvLayer& kv, const int32_t* table,
                                int64_t num_keys, int32_t kv_head, int64_t G, float scale,
                                float* out_row, Scratch& s) {
  constexpr bool kQuantized = kv_is_quantized(T);
  const int64_t D = kv.head_dim, bs = kv.block_size;
  const char* k_base = static_cast<const char*>(kv.k);
  const char* v_base = static_cast<const char*>(kv.v);
  const float* q_group = q_row + int64_t(kv_head) * G * D;  // [G, D]
  float* row = s.row.data();
  std::fill(s.acc.begin(), s.acc.end(), 0.f);
  std::fill(s.max.begin(), s.max.end(), -std::numeric_limits<float>::infinity());
  std::fill(s.sum.begin(), s.sum.end(), 0.0);
  for (int64_t start = 0; start < num_keys; start += bs) {
    const int64_t n = std::min(bs, num_keys - start);
    const int64_t slot0 = int64_t(table[start / bs]) * bs;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t slot = slot0 + j;
      widen_row<T>(k_base + kv.value_offset(slot, kv_head), D, row);
      for (int64_t g = 0; g < G; ++g) {
        float x = dot(q_group + g * D, row, D);
        if constexpr (kQuantized) x *= kv.k_scale[kv.scale_offset(slot, kv_head)];
        s.scores[size_t(g * bs + j)] = x * scale;
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      const float* scores = s.scores.data() + g * bs;
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) block_max = std::max(block_max, scores[j]);
      if (block_max > s.max[size_t(g)]) {
        const float correction = std::exp(s.max[size_t(g)] - block_max);  // 0 on the first block
        s.sum[size_t(g)] *= correction;
        float* a = s.acc.data() + g * D;
        for (int64_t i = 0; i < D; ++i) a[i] *= correction;
        s.max[size_t(g)] = block_max;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const int64_t slot = slot0 + j;
      widen_row<T>(v_base + kv.value_offset(slot, kv_head), D, row);
      for (int64_t g = 0; g < G; ++g) {
        float p = std::exp(s.scores[size_t(g * bs + j)] - s.max[size_t(g)]);
        s.sum[size_t(g)] += p;
        if constexpr (kQuantized) p *= kv.v_scale[kv.scale_offset(slot, kv_head)];
        axpy(p, row, D, s.acc.data() + g * D);
      }
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    const double l = s.sum[size_t(g)];
    const float inv = l > 0.0 ? float(1.0 / l) : 0.f;
    const float* a = s.acc.data() + g * D;
    float* o = out_row + (int64_t(kv_head) * G + g) * D;
    for (int64_t i = 0; i < D; ++i) o[i] = a[i] * inv;
  }
}

// attend_row compiled for AVX2 + FMA (the build's baseline is x86-64: SSE2): 8-wide widening
// of the stored values and fused multiply-adds.
template <KvDType T>
#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
#endif
void attend_row_avx2(const float* q_row, const PagedKvLayer& kv, const int32_t* table, int64_t num_keys,
                     int32_t kv_head, int64_t G, float scale, float* out_row, Scratch& s) {
  attend_row<T>(q_row, kv, table, num_keys, kv_head, G, scale, out_row, s);
}

}  // namespace

// out[T, Hq D] = causal softmax(q . k * scale) . v over the paged cache. Query row t of sequence
// i (local index j) sits at position context_lens[i] - q_len + j and sees keys [0, position].
void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                     float scale, Tensor out) {
  const std::vector<int32_t> seq_of = check_inputs(q, kv, meta, out);
  const int64_t T = q.dim(0), D = kv.head_dim, Hkv = kv.num_kv_heads;
  const int64_t Hq = q.dim(1) / D, G = Hq / Hkv;
  const bool avx2 = has_avx2_fma();
  dispatch_kv_dtype(kv.dtype, [&](auto tag) {
    constexpr KvDType kT = decltype(tag)::value;
#pragma omp parallel
    {
      Scratch scratch(G, kv.block_size, D);
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < T * Hkv; ++item) {
        const int64_t t = item / Hkv, kv_head = item % Hkv;
        const int32_t i = seq_of[size_t(t)];
        const int64_t q_len = meta.cu_seqlens_q[i + 1] - meta.cu_seqlens_q[i];
        const int64_t position = meta.context_lens[i] - q_len + (t - meta.cu_seqlens_q[i]);
        const int32_t* table = meta.block_tables + int64_t(i) * meta.max_blocks_per_seq;
        (avx2 ? attend_row_avx2<kT> : attend_row<kT>)(
            q.ptr<float>() + t * Hq * D, kv, table, position + 1, int32_t(kv_head), G, scale,
            out.ptr<float>() + t * Hq * D, scratch);
      }
    }
  });
}

}  // namespace nanovllm::cpu
