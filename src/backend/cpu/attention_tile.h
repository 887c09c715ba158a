#pragma once
// The CPU paged attention's inner kernel: one tile of query rows of one sequence against one KV
// head's cache, a cache block at a time. Each K / V row of a block is widened to float once for
// every query vector of the tile (its rows x the G query heads of the KV head's group).
//
// A query vector's arithmetic does not depend on which other vectors share its tile: a score is
// eight lanes of multiply-adds over the head reduced by a fixed tree, P V accumulates each
// element over the keys in order. A row gives the same bits in a decode step (a tile of one row)
// as in any prefill chunk, so scheduling (chunk sizes, prefix caching, preemption) never changes
// an output.
//
// Everything here is always inlined so that the AVX2 + FMA copy of the caller compiles all of it
// for that target (a target function inlines only what it is given).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/kv_quant.h"
#include "core/paged_kv.h"

#define NANOVLLM_INLINE inline __attribute__((always_inline))

// GCC notes that 32-byte vectors change the ABI of functions built without AVX: these are all
// inlined (the note is raised where the including file instantiates them, so no pop).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace nanovllm::cpu::attention_tile {

// Eight floats as one vector (GCC / Clang vector extension: one AVX register in the AVX2 copy,
// two SSE registers in the baseline one).
typedef float Float8 __attribute__((vector_size(32)));
typedef int ShuffleMask __attribute__((vector_size(32)));  // lane indices into two Float8

constexpr int64_t kKeys = 8;  // keys a score pass covers: one lane each after the reduction

NANOVLLM_INLINE Float8 load8(const float* p) {
  Float8 x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

NANOVLLM_INLINE void store8(float* p, const Float8& x) { std::memcpy(p, &x, sizeof x); }

NANOVLLM_INLINE Float8 shuffle(const Float8& a, const Float8& b, const ShuffleMask& mask) {
#if defined(__clang__)
  return __builtin_shufflevector(a, b, mask[0], mask[1], mask[2], mask[3], mask[4], mask[5], mask[6], mask[7]);
#else
  return __builtin_shuffle(a, b, mask);
#endif
}

// out[j] = the sum of a[j]'s eight lanes, ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)) for every j.
NANOVLLM_INLINE Float8 reduce8(const Float8 (&a)[8]) {
  const ShuffleMask even = {0, 8, 2, 10, 4, 12, 6, 14}, odd = {1, 9, 3, 11, 5, 13, 7, 15};
  Float8 t[4];
  for (int k = 0; k < 4; ++k) t[k] = shuffle(a[2 * k], a[2 * k + 1], even) + shuffle(a[2 * k], a[2 * k + 1], odd);
  // t[k] = [a2k 01, a2k+1 01, a2k 23, a2k+1 23, a2k 45, a2k+1 45, a2k 67, a2k+1 67]
  const ShuffleMask lo_pairs = {0, 1, 8, 9, 4, 5, 12, 13}, hi_pairs = {2, 3, 10, 11, 6, 7, 14, 15};
  const Float8 u0 = shuffle(t[0], t[1], lo_pairs) + shuffle(t[0], t[1], hi_pairs);
  const Float8 u1 = shuffle(t[2], t[3], lo_pairs) + shuffle(t[2], t[3], hi_pairs);
  // u0 = [a0..a3 lanes 0-3, a0..a3 lanes 4-7], u1 the same for a4..a7
  const ShuffleMask low_halves = {0, 1, 2, 3, 8, 9, 10, 11}, high_halves = {4, 5, 6, 7, 12, 13, 14, 15};
  return shuffle(u0, u1, low_halves) + shuffle(u0, u1, high_halves);
}

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

// scores[0, 8) = q[D] . k[j][D] for the eight rows k[j] = keys + j * D.
NANOVLLM_INLINE void scores8(const float* q, const float* keys, int64_t D, float* scores) {
  Float8 acc[8] = {};
  const int64_t body = D / 8 * 8;
  for (int64_t i = 0; i < body; i += 8) {
    const Float8 x = load8(q + i);
    for (int j = 0; j < 8; ++j) acc[j] += x * load8(keys + j * D + i);
  }
  Float8 s = reduce8(acc);
  for (int64_t i = body; i < D; ++i)
    for (int j = 0; j < 8; ++j) s[j] += q[i] * keys[j * D + i];
  store8(scores, s);
}

// acc[D] += sum over j < n, in order, of p[j] * v[j][D] (v: [n, D]); each element's sum is the
// same chain of multiply-adds whatever D's chunking.
NANOVLLM_INLINE void accumulate_pv(const float* p, int64_t n, const float* v, int64_t D, float* acc) {
  int64_t i = 0;
  for (; i + 64 <= D; i += 64) {
    Float8 a[8];
    for (int u = 0; u < 8; ++u) a[u] = load8(acc + i + 8 * u);
    for (int64_t j = 0; j < n; ++j)
      for (int u = 0; u < 8; ++u) a[u] += p[j] * load8(v + j * D + i + 8 * u);
    for (int u = 0; u < 8; ++u) store8(acc + i + 8 * u, a[u]);
  }
  for (; i + 8 <= D; i += 8) {
    Float8 a = load8(acc + i);
    for (int64_t j = 0; j < n; ++j) a += p[j] * load8(v + j * D + i);
    store8(acc + i, a);
  }
  for (; i < D; ++i) {
    float a = acc[i];
    for (int64_t j = 0; j < n; ++j) a += p[j] * v[j * D + i];
    acc[i] = a;
  }
}

// One tile: `rows` consecutive query rows of a sequence (row r sees keys [0, num_keys[r]),
// num_keys ascending) x the G query heads of one KV head = Q = rows * G query vectors.
struct Tile {
  const float* const* q;   // [Q] each query vector's D values, row-major (row r, head g: r * G + g)
  float* const* out;       // [Q] where each vector's D outputs go
  const int64_t* num_keys; // [rows]
  int64_t rows, G;
  const int32_t* table;    // the sequence's block table
  int32_t kv_head;
};

// Per-thread scratch for tiles of up to max_q query vectors.
struct Scratch {
  int64_t padded_bs;                // block_size rounded up to kKeys
  std::vector<float> k, v;          // [padded_bs, D] a block's K / V rows widened (finite past its keys)
  std::vector<float> k_scale, v_scale;  // [padded_bs] the block's scales (quantized caches)
  std::vector<float> scores;        // [padded_bs] one vector's scores of the block
  std::vector<float> weights;       // [padded_bs] one vector's probabilities x V scales
  std::vector<float> max;           // [max_q]
  std::vector<double> sum;          // [max_q]
  std::vector<float> acc;           // [max_q, D]
  Scratch(int64_t max_q, int64_t bs, int64_t D)
      : padded_bs((bs + kKeys - 1) / kKeys * kKeys),
        k(size_t(padded_bs * D), 0.f),
        v(size_t(padded_bs * D), 0.f),
        k_scale(size_t(padded_bs)),
        v_scale(size_t(padded_bs)),
        scores(size_t(padded_bs)),
        weights(size_t(padded_bs)),
        max(size_t(max_q)),
        sum(size_t(max_q)),
        acc(size_t(max_q * D)) {}
};

// Causal softmax(q . k * scale) . v of every vector of the tile. Softmax is online per cache
// block: the block's scores, then one rescale of each vector's running (max, sum, acc).
// Quantized scales fold in: s = (q . k_q) * k_scale * scale, and the weight of v_q is p * v_scale;
// nothing is dequantized into memory beyond the block being read.
template <KvDType T>
NANOVLLM_INLINE void attend_tile(const Tile& tile, const PagedKvLayer& kv, float scale, Scratch& s) {
  constexpr bool kQuantized = kv_is_quantized(T);
  const int64_t D = kv.head_dim, bs = kv.block_size, G = tile.G, Q = tile.rows * G;
  const char* k_base = static_cast<const char*>(kv.k);
  const char* v_base = static_cast<const char*>(kv.v);
  std::fill_n(s.acc.begin(), Q * D, 0.f);
  std::fill_n(s.max.begin(), Q, -std::numeric_limits<float>::infinity());
  std::fill_n(s.sum.begin(), Q, 0.0);
  const int64_t last_keys = tile.num_keys[tile.rows - 1];
  int64_t first_row = 0;  // rows before it have seen all their keys
  for (int64_t start = 0; start < last_keys; start += bs) {
    while (tile.num_keys[first_row] <= start) ++first_row;
    const int64_t n_block = std::min(bs, last_keys - start);
    const int64_t slot0 = int64_t(tile.table[start / bs]) * bs;
    for (int64_t j = 0; j < n_block; ++j) {
      widen_row<T>(k_base + kv.value_offset(slot0 + j, tile.kv_head), D, s.k.data() + j * D);
      widen_row<T>(v_base + kv.value_offset(slot0 + j, tile.kv_head), D, s.v.data() + j * D);
      if constexpr (kQuantized) {
        s.k_scale[size_t(j)] = kv.k_scale[kv.scale_offset(slot0 + j, tile.kv_head)];
        s.v_scale[size_t(j)] = kv.v_scale[kv.scale_offset(slot0 + j, tile.kv_head)];
      }
    }
    for (int64_t qi = first_row * G; qi < Q; ++qi) {
      const int64_t n = std::min(bs, tile.num_keys[qi / G] - start);
      float* scores = s.scores.data();
      for (int64_t j = 0; j < n; j += kKeys) scores8(tile.q[qi], s.k.data() + j * D, D, scores + j);
      float block_max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        float x = scores[j];
        if constexpr (kQuantized) x *= s.k_scale[size_t(j)];
        scores[j] = x * scale;
        block_max = std::max(block_max, scores[j]);
      }
      float* acc = s.acc.data() + qi * D;
      if (block_max > s.max[size_t(qi)]) {
        const float correction = std::exp(s.max[size_t(qi)] - block_max);  // 0 on the first block
        s.sum[size_t(qi)] *= correction;
        for (int64_t i = 0; i < D; ++i) acc[i] *= correction;
        s.max[size_t(qi)] = block_max;
      }
      float* w = s.weights.data();
      for (int64_t j = 0; j < n; ++j) {
        const float p = std::exp(scores[j] - s.max[size_t(qi)]);
        s.sum[size_t(qi)] += p;
        w[j] = kQuantized ? p * s.v_scale[size_t(j)] : p;
      }
      accumulate_pv(w, n, s.v.data(), D, acc);
    }
  }
  for (int64_t qi = 0; qi < Q; ++qi) {
    const double l = s.sum[size_t(qi)];
    const float inv = l > 0.0 ? float(1.0 / l) : 0.f;
    const float* acc = s.acc.data() + qi * D;
    float* o = tile.out[qi];
    for (int64_t i = 0; i < D; ++i) o[i] = acc[i] * inv;
  }
}

}  // namespace nanovllm::cpu::attention_tile
