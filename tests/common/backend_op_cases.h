#pragma once
// Random cases for backend op tests, shared by the CPU tests and the CUDA-vs-CPU tests. Host
// memory only: a device test uploads the arrays, runs its op, and compares with the CPU backend
// or with the double-precision references here.
//
//   Rng rng(seed);                         rng.uniform(lo, hi), rng.normal(), rng.index(n)
//   random_floats(n, rng, lo, hi)          n uniform values, none exactly zero
//   host_tensor(vec, {dims})               a CPU Tensor view of a std::vector (F32/I32/I64)
//
//   PagedAttentionSpec spec{...};          per-sequence q_lens and context_lens (context >= q),
//                                          heads, head_dim, block_size, kv dtype
//   PagedAttentionCase c = make_paged_attention_case(spec, seed);
//     c.q            [T, Hq * D] float queries (T = sum of q_lens)
//     c.k_orig/v_orig[seq] [context_len, Hkv, D] the float K/V before storage
//     c.k_cache/v_cache  [num_blocks, block_size, Hkv, kv_head_bytes] bytes, already filled with
//                    every sequence's K/V (kv_store_head), shuffled block tables; blocks no
//                    sequence uses hold random junk so a wrong block id shows
//     c.k_scale/v_scale  [num_blocks, block_size, Hkv] (quantized dtypes; else empty)
//     c.cu_seqlens_q [B + 1], c.context_lens [B], c.block_tables [B, max_blocks_per_seq] (-1 pad)
//     c.positions [T], c.slot_mapping [T]: positions and cache slots of the query tokens
//     c.layer(k, v, k_scale, v_scale) / c.host_layer(): PagedKvLayer over given / host pointers
//     c.host_meta(): AttentionMeta over the host arrays
//   reference_attention(c, KvValues::Stored | KvValues::Original, scale) -> [T, Hq * D] doubles
//
//   QkvCase q = make_qkv_case(T, Hq, Hkv, D, with_norm, rope_theta, seed)
//     q.qkv [T, (Hq + 2 Hkv) D], q.positions [T], q.inv_freq [D/2], q.q_norm/k_norm [D] (or empty)
//   reference_qkv(q, eps) -> {q [T,Hq,D], k [T,Hkv,D], v [T,Hkv,D]} in double
//
//   max_abs_error(got, want), has_non_finite(v)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <random>
#include <type_traits>
#include <vector>

#include "core/batch.h"
#include "core/kv_quant.h"
#include "core/paged_kv.h"
#include "core/tensor.h"

namespace nanovllm::testing {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen_); }
  float normal() { return std::normal_distribution<float>(0.f, 1.f)(gen_); }
  int64_t index(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(gen_); }
  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

inline std::vector<float> random_floats(size_t n, Rng& rng, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(n);
  for (float& x : v) {
    do x = rng.uniform(lo, hi);
    while (x == 0.f);
  }
  return v;
}

template <class T>
Tensor host_tensor(std::vector<T>& v, std::initializer_list<int64_t> dims) {
  DType dt = std::is_same_v<T, float>     ? DType::F32
             : std::is_same_v<T, int32_t> ? DType::I32
             : std::is_same_v<T, int64_t> ? DType::I64
                                          : DType::U8;
  return Tensor(v.data(), dt, Device::CPU, dims);
}

inline bool has_non_finite(const std::vector<float>& v) {
  return std::any_of(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
}

template <class A, class B>
double max_abs_error(const std::vector<A>& got, const std::vector<B>& want) {
  double e = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    e = std::max(e, std::fabs(double(got[i]) - double(want[i])));
  return got.size() == want.size() ? e : INFINITY;
}

// ---------------------------------------------------------------- paged attention

struct PagedAttentionSpec {
  std::vector<int32_t> q_lens;        // [B] new tokens per sequence
  std::vector<int32_t> context_lens;  // [B] cached + new tokens, each >= its q_len
  int32_t num_heads = 4;              // Hq
  int32_t num_kv_heads = 2;           // Hkv
  int32_t head_dim = 64;              // D
  int32_t block_size = 16;
  KvDType dtype = KvDType::F32;
  int32_t extra_blocks = 3;  // unreferenced junk blocks in the pool
  float value_range = 2.f;   // K/V/q uniform in [-range, range]
};

struct PagedAttentionCase {
  PagedAttentionSpec spec;
  int32_t num_tokens = 0, num_blocks = 0, max_blocks_per_seq = 0;
  std::vector<float> q;                          // [T, Hq * D]
  std::vector<std::vector<float>> k_orig, v_orig;  // [B][context_len, Hkv, D]
  std::vector<uint8_t> k_cache, v_cache;          // [num_blocks, block_size, Hkv, head_bytes]
  std::vector<float> k_scale, v_scale;            // [num_blocks, block_size, Hkv] or empty
  std::vector<int32_t> cu_seqlens_q, context_lens, block_tables, positions;
  std::vector<int64_t> slot_mapping;  // [T]

  int64_t slot_of(int32_t seq, int32_t pos) const {
    return int64_t(block_tables[size_t(seq) * max_blocks_per_seq + pos / spec.block_size]) *
               spec.block_size +
           pos % spec.block_size;
  }
  PagedKvLayer layer(void* k, void* v, float* ks, float* vs) const {
    PagedKvLayer l;
    l.k = k;
    l.v = v;
    l.k_scale = kv_is_quantized(spec.dtype) ? ks : nullptr;
    l.v_scale = kv_is_quantized(spec.dtype) ? vs : nullptr;
    l.dtype = spec.dtype;
    l.num_blocks = num_blocks;
    l.block_size = spec.block_size;
    l.num_kv_heads = spec.num_kv_heads;
    l.head_dim = spec.head_dim;
    return l;
  }
  PagedKvLayer host_layer() {
    return layer(k_cache.data(), v_cache.data(), k_scale.data(), v_scale.data());
  }
  AttentionMeta host_meta() const {
    AttentionMeta m;
    m.cu_seqlens_q = cu_seqlens_q.data();
    m.context_lens = context_lens.data();
    m.block_tables = block_tables.data();
    m.num_seqs = int32_t(context_lens.size());
    m.max_blocks_per_seq = max_blocks_per_seq;
    for (size_t i = 0; i < context_lens.size(); ++i) {
      m.max_query_len = std::max(m.max_query_len, cu_seqlens_q[i + 1] - cu_seqlens_q[i]);
      m.max_context_len = std::max(m.max_context_len, context_lens[i]);
    }
    return m;
  }
  // The value the cache holds for (sequence, position, kv head, element), scale applied.
  double stored(bool is_k, int32_t seq, int32_t pos, int32_t head, int32_t i) const {
    const int64_t slot = slot_of(seq, pos);
    const int64_t index = slot * spec.num_kv_heads + head;  // (slot, head) row
    const uint8_t* base =
        (is_k ? k_cache : v_cache).data() + index * kv_head_bytes(spec.dtype, spec.head_dim);
    double x = kv_load_raw(base, spec.dtype, i);
    if (kv_is_quantized(spec.dtype)) x *= (is_k ? k_scale : v_scale)[size_t(index)];
    return x;
  }
};

inline PagedAttentionCase make_paged_attention_case(const PagedAttentionSpec& spec,
                                                    uint64_t seed) {
  Rng rng(seed);
  PagedAttentionCase c;
  c.spec = spec;
  const int32_t B = int32_t(spec.q_lens.size());
  const int32_t Hq = spec.num_heads, Hkv = spec.num_kv_heads, D = spec.head_dim,
                bs = spec.block_size;
  const float r = spec.value_range;
  c.context_lens = spec.context_lens;
  c.cu_seqlens_q.assign(1, 0);
  int32_t total_blocks = 0;
  for (int32_t i = 0; i < B; ++i) {
    c.cu_seqlens_q.push_back(c.cu_seqlens_q.back() + spec.q_lens[size_t(i)]);
    const int32_t blocks = (spec.context_lens[size_t(i)] + bs - 1) / bs;
    c.max_blocks_per_seq = std::max(c.max_blocks_per_seq, blocks);
    total_blocks += blocks;
  }
  c.max_blocks_per_seq += 1;  // one -1 pad column at least
  c.num_tokens = c.cu_seqlens_q.back();
  c.num_blocks = total_blocks + spec.extra_blocks;

  std::vector<int32_t> pool(size_t(c.num_blocks));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng.engine());
  c.block_tables.assign(size_t(B) * c.max_blocks_per_seq, -1);
  size_t next = 0;
  for (int32_t i = 0; i < B; ++i)
    for (int32_t b = 0; b < (spec.context_lens[size_t(i)] + bs - 1) / bs; ++b)
      c.block_tables[size_t(i) * c.max_blocks_per_seq + b] = pool[next++];

  const int64_t head_bytes = kv_head_bytes(spec.dtype, D);
  const size_t slots = size_t(c.num_blocks) * bs;
  // Junk everywhere first (never zeros), then each sequence's rows stored over it.
  c.k_cache.resize(slots * Hkv * head_bytes);
  c.v_cache.resize(slots * Hkv * head_bytes);
  for (auto* cache : {&c.k_cache, &c.v_cache})
    for (uint8_t& b : *cache) b = uint8_t(1 + rng.index(0x7e));  // no fp8 NaN codes
  if (kv_is_quantized(spec.dtype)) {
    c.k_scale = random_floats(slots * Hkv, rng, 0.5f, 1.f);
    c.v_scale = random_floats(slots * Hkv, rng, 0.5f, 1.f);
  }
  if (spec.dtype == KvDType::F32 || spec.dtype == KvDType::F16 || spec.dtype == KvDType::BF16) {
    // Junk float bit patterns could be NaN: overwrite with finite junk.
    std::vector<float> junk = random_floats(size_t(D), rng, -r, r);
    for (auto* cache : {&c.k_cache, &c.v_cache})
      for (size_t s = 0; s < slots * Hkv; ++s)
        kv_store_head(junk.data(), D, spec.dtype, cache->data() + s * head_bytes);
  }
  PagedKvLayer l = c.host_layer();
  for (int32_t i = 0; i < B; ++i) {
    const int32_t ctx = spec.context_lens[size_t(i)];
    c.k_orig.push_back(random_floats(size_t(ctx) * Hkv * D, rng, -r, r));
    c.v_orig.push_back(random_floats(size_t(ctx) * Hkv * D, rng, -r, r));
    for (int32_t p = 0; p < ctx; ++p) {
      const int64_t slot = c.slot_of(i, p);
      for (int32_t h = 0; h < Hkv; ++h) {
        const size_t src = (size_t(p) * Hkv + h) * D;
        float ks = kv_store_head(c.k_orig.back().data() + src, D, spec.dtype,
                                 c.k_cache.data() + l.value_offset(slot, h));
        float vs = kv_store_head(c.v_orig.back().data() + src, D, spec.dtype,
                                 c.v_cache.data() + l.value_offset(slot, h));
        if (kv_is_quantized(spec.dtype)) {
          c.k_scale[size_t(l.scale_offset(slot, h))] = ks;
          c.v_scale[size_t(l.scale_offset(slot, h))] = vs;
        }
      }
    }
    const int32_t q_len = spec.q_lens[size_t(i)];
    for (int32_t j = 0; j < q_len; ++j) {
      c.positions.push_back(ctx - q_len + j);
      c.slot_mapping.push_back(c.slot_of(i, ctx - q_len + j));
    }
  }
  c.q = random_floats(size_t(c.num_tokens) * Hq * D, rng, -r, r);
  return c;
}

enum class KvValues { Stored, Original };

// Causal attention in double over either the values the cache holds (dequantized) or the float
// values before storage. Returns [T, Hq * D].
inline std::vector<double> reference_attention(const PagedAttentionCase& c, KvValues which,
                                               float scale) {
  const auto& s = c.spec;
  const int32_t Hq = s.num_heads, Hkv = s.num_kv_heads, D = s.head_dim, G = Hq / Hkv;
  std::vector<double> out(size_t(c.num_tokens) * Hq * D, 0.0);
  for (size_t i = 0; i + 1 < c.cu_seqlens_q.size(); ++i) {
    const int32_t q_len = c.cu_seqlens_q[i + 1] - c.cu_seqlens_q[i];
    for (int32_t j = 0; j < q_len; ++j) {
      const int32_t t = c.cu_seqlens_q[i] + j;
      const int32_t pos = c.context_lens[i] - q_len + j;
      for (int32_t h = 0; h < Hq; ++h) {
        const int32_t kvh = h / G;
        auto value = [&](bool is_k, int32_t p, int32_t e) {
          if (which == KvValues::Stored) return c.stored(is_k, int32_t(i), p, kvh, e);
          return double((is_k ? c.k_orig : c.v_orig)[i][(size_t(p) * Hkv + kvh) * D + e]);
        };
        std::vector<double> scores(size_t(pos) + 1);
        double m = -INFINITY;
        for (int32_t p = 0; p <= pos; ++p) {
          double dot = 0;
          for (int32_t e = 0; e < D; ++e)
            dot += double(c.q[(size_t(t) * Hq + h) * D + e]) * value(true, p, e);
          scores[size_t(p)] = dot * scale;
          m = std::max(m, scores[size_t(p)]);
        }
        double sum = 0;
        for (double& x : scores) sum += (x = std::exp(x - m));
        for (int32_t p = 0; p <= pos; ++p)
          for (int32_t e = 0; e < D; ++e)
            out[(size_t(t) * Hq + h) * D + e] += scores[size_t(p)] / sum * value(false, p, e);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- qkv + rope + store

struct QkvCase {
  int32_t num_tokens, num_heads, num_kv_heads, head_dim;
  std::vector<float> qkv;        // [T, (Hq + 2 Hkv) D]
  std::vector<int32_t> positions;  // [T]
  std::vector<float> inv_freq;   // [D/2]
  std::vector<float> q_norm, k_norm;  // [D] or empty
};

inline QkvCase make_qkv_case(int32_t T, int32_t Hq, int32_t Hkv, int32_t D, bool with_norm,
                             double rope_theta, uint64_t seed, int32_t max_position = 5000) {
  Rng rng(seed);
  QkvCase c{T, Hq, Hkv, D, {}, {}, {}, {}, {}};
  c.qkv = random_floats(size_t(T) * (Hq + 2 * Hkv) * D, rng, -2.f, 2.f);
  for (int32_t t = 0; t < T; ++t) c.positions.push_back(int32_t(rng.index(max_position)));
  for (int32_t i = 0; i < D / 2; ++i)
    c.inv_freq.push_back(float(1.0 / std::pow(rope_theta, 2.0 * i / D)));
  if (with_norm) {
    c.q_norm = random_floats(size_t(D), rng, 0.5f, 1.5f);
    c.k_norm = random_floats(size_t(D), rng, 0.5f, 1.5f);
  }
  return c;
}

struct QkvReference {
  std::vector<double> q, k, v;  // [T, Hq, D], [T, Hkv, D], [T, Hkv, D]
};

inline QkvReference reference_qkv(const QkvCase& c, double eps) {
  const int32_t D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads;
  const size_t row = size_t(Hq + 2 * Hkv) * D;
  QkvReference r;
  auto head = [&](int32_t t, int32_t h, const std::vector<float>& norm, bool rope) {
    std::vector<double> x(static_cast<size_t>(D));
    for (int32_t i = 0; i < D; ++i) x[size_t(i)] = c.qkv[t * row + size_t(h) * D + i];
    if (!norm.empty()) {
      double ss = 0;
      for (double v : x) ss += v * v;
      const double inv = 1.0 / std::sqrt(ss / D + eps);
      for (int32_t i = 0; i < D; ++i) x[size_t(i)] *= inv * norm[size_t(i)];
    }
    if (rope) {
      for (int32_t i = 0; i < D / 2; ++i) {
        const double a = double(c.positions[size_t(t)]) * double(c.inv_freq[size_t(i)]);
        const double x1 = x[size_t(i)], x2 = x[size_t(i + D / 2)];
        x[size_t(i)] = x1 * std::cos(a) - x2 * std::sin(a);
        x[size_t(i + D / 2)] = x2 * std::cos(a) + x1 * std::sin(a);
      }
    }
    return x;
  };
  for (int32_t t = 0; t < c.num_tokens; ++t) {
    for (int32_t h = 0; h < Hq; ++h)
      for (double v : head(t, h, c.q_norm, true)) r.q.push_back(v);
    for (int32_t h = 0; h < Hkv; ++h)
      for (double v : head(t, Hq + h, c.k_norm, true)) r.k.push_back(v);
    for (int32_t h = 0; h < Hkv; ++h)
      for (double v : head(t, Hq + Hkv + h, {}, false)) r.v.push_back(v);
  }
  return r;
}

}  // namespace nanovllm::testing
