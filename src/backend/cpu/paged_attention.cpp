#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/attention_checks.h"
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

// Every FP8 e4m3 code decoded once (an immutable table: a lookup beats the bit decoding).
const std::array<float, 256> kFp8Values = [] {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c) t[size_t(c)] = fp8_e4m3_decode(uint8_t(c));
  return t;
}();

// q[D] . k_raw[D] over the stored (unscaled) values of one cache row.
template <KvDType T>
inline float dot_raw(const float* q, const void* k, int64_t D) {
  float s = 0.f;
  if constexpr (T == KvDType::FP8_E4M3) {
    const uint8_t* b = static_cast<const uint8_t*>(k);
    for (int64_t i = 0; i < D; ++i) s += q[i] * kFp8Values[b[i]];
  } else if constexpr (T == KvDType::INT4) {
    const uint8_t* b = static_cast<const uint8_t*>(k);
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < D / 2; ++i)
      s += q[2 * i] * float(int4_low(b[i])) + q[2 * i + 1] * float(int4_high(b[i]));
    if (D & 1) s += q[D - 1] * float(int4_low(b[D / 2]));
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < D; ++i) s += q[i] * kv_load_raw(k, T, i);
  }
  return s;
}

// acc[D] += w * v_raw[D]
template <KvDType T>
inline void axpy_raw(float w, const void* v, int64_t D, float* acc) {
  if constexpr (T == KvDType::FP8_E4M3) {
    const uint8_t* b = static_cast<const uint8_t*>(v);
    for (int64_t i = 0; i < D; ++i) acc[i] += w * kFp8Values[b[i]];
  } else if constexpr (T == KvDType::INT4) {
    const uint8_t* b = static_cast<const uint8_t*>(v);
#pragma omp simd
    for (int64_t i = 0; i < D / 2; ++i) {
      acc[2 * i] += w * float(int4_low(b[i]));
      acc[2 * i + 1] += w * float(int4_high(b[i]));
    }
    if (D & 1) acc[D - 1] += w * float(int4_low(b[D / 2]));
  } else {
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) acc[i] += w * kv_load_raw(v, T, i);
  }
}

// Per-thread scratch of one work item: scores [G, block_size], running max/sum [G], acc [G, D].
struct Scratch {
  std::vector<float> scores, max;
  std::vector<double> sum;
  std::vector<float> acc;
  Scratch(int64_t G, int64_t bs, int64_t D)
      : scores(size_t(G * bs)), max(size_t(G)), sum(size_t(G)), acc(size_t(G * D)) {}
};

// One (query row, KV head) work item: the G query heads of the GQA group share each K/V block
// while it is in cache. Softmax is online per cache block: the block's scores, then one rescale
// of each head's running (max, sum, acc). Quantized scales fold in: s = (q . k_q) * k_scale *
// scale, and the weight of v_q is p * v_scale; nothing is dequantized into memory.
template <KvDType T>
void attend_row(const float* q_row, const PagedKvLayer& kv, const int32_t* table,
                int64_t num_keys, int32_t kv_head, int64_t G, float scale, float* out_row,
                Scratch& s) {
  constexpr bool kQuantized = kv_is_quantized(T);
  const int64_t D = kv.head_dim, bs = kv.block_size;
  const char* k_base = static_cast<const char*>(kv.k);
  const char* v_base = static_cast<const char*>(kv.v);
  const float* q_group = q_row + int64_t(kv_head) * G * D;  // [G, D]
  std::fill(s.acc.begin(), s.acc.end(), 0.f);
  std::fill(s.max.begin(), s.max.end(), -std::numeric_limits<float>::infinity());
  std::fill(s.sum.begin(), s.sum.end(), 0.0);
  for (int64_t start = 0; start < num_keys; start += bs) {
    const int64_t n = std::min(bs, num_keys - start);
    const int64_t slot0 = int64_t(table[start / bs]) * bs;
    for (int64_t g = 0; g < G; ++g) {
      float* scores = s.scores.data() + g * bs;
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        const int64_t slot = slot0 + j;
        float x = dot_raw<T>(q_group + g * D, k_base + kv.value_offset(slot, kv_head), D);
        if constexpr (kQuantized) x *= kv.k_scale[kv.scale_offset(slot, kv_head)];
        scores[j] = x * scale;
        block_max = std::max(block_max, scores[j]);
      }
      float* a = s.acc.data() + g * D;
      if (block_max > s.max[size_t(g)]) {
        const float correction = std::exp(s.max[size_t(g)] - block_max);  // 0 on the first block
        s.sum[size_t(g)] *= correction;
        for (int64_t i = 0; i < D; ++i) a[i] *= correction;
        s.max[size_t(g)] = block_max;
      }
      const float m = s.max[size_t(g)];
      for (int64_t j = 0; j < n; ++j) {
        const int64_t slot = slot0 + j;
        float p = std::exp(scores[j] - m);
        s.sum[size_t(g)] += p;
        if constexpr (kQuantized) p *= kv.v_scale[kv.scale_offset(slot, kv_head)];
        axpy_raw<T>(p, v_base + kv.value_offset(slot, kv_head), D, a);
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

}  // namespace

// out[T, Hq D] = causal softmax(q . k * scale) . v over the paged cache. Query row t of sequence
// i (local index j) sits at position context_lens[i] - q_len + j and sees keys [0, position].
void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                     float scale, Tensor out) {
  const std::vector<int32_t> seq_of = check_inputs(q, kv, meta, out);
  const int64_t T = q.dim(0), D = kv.head_dim, Hkv = kv.num_kv_heads;
  const int64_t Hq = q.dim(1) / D, G = Hq / Hkv;
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
        attend_row<kT>(q.ptr<float>() + t * Hq * D, kv, table, position + 1, int32_t(kv_head), G,
                       scale, out.ptr<float>() + t * Hq * D, scratch);
      }
    }
  });
}

}  // namespace nanovllm::cpu
