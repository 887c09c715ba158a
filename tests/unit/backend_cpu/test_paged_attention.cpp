// paged_attention against double-precision causal attention: odd lengths, GQA ratios, head dims,
// block sizes, decode + prefill + cached-prefix rows in one call, every KV dtype.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "core/error.h"

namespace nanovllm {
namespace {

using testing::host_tensor;
using testing::KvValues;
using testing::make_paged_attention_case;
using testing::PagedAttentionCase;
using testing::PagedAttentionSpec;

std::vector<float> run_attention(PagedAttentionCase& c) {
  CpuBackend be;
  const int64_t T = c.num_tokens, HD = int64_t(c.spec.num_heads) * c.spec.head_dim;
  std::vector<float> out(size_t(T * HD), NAN);
  be.paged_attention(host_tensor(c.q, {T, HD}), c.host_layer(), c.host_meta(),
                     1.f / std::sqrt(float(c.spec.head_dim)), host_tensor(out, {T, HD}));
  return out;
}

double check_against(PagedAttentionCase& c, KvValues which) {
  std::vector<float> out = run_attention(c);
  EXPECT_FALSE(testing::has_non_finite(out));
  return testing::max_abs_error(
      out, testing::reference_attention(c, which, 1.f / std::sqrt(float(c.spec.head_dim))));
}

// Decode rows, a full prefill, a chunk after a cached prefix, lengths around the block size.
PagedAttentionSpec mixed_batch(int32_t bs) {
  PagedAttentionSpec s;
  s.block_size = bs;
  s.q_lens = {1, 7, 1, 5, bs + 1, 1};
  s.context_lens = {97, 7, 1, 40, 2 * bs + 3, bs - 1};
  return s;
}

TEST(PagedAttention, MatchesReferenceAcrossShapes) {
  for (int32_t bs : {16, 32})
    for (int32_t D : {64, 128})
      for (int32_t ratio : {1, 2, 4, 8}) {
        PagedAttentionSpec s = mixed_batch(bs);
        s.head_dim = D;
        s.num_kv_heads = 8 / ratio;
        s.num_heads = 8;
        PagedAttentionCase c = make_paged_attention_case(s, uint64_t(bs * 1000 + D + ratio));
        EXPECT_LT(check_against(c, KvValues::Original), 2e-5)
            << "bs=" << bs << " D=" << D << " ratio=" << ratio;
      }
}

TEST(PagedAttention, LongPrefillAndSingleToken) {
  PagedAttentionSpec s;
  s.q_lens = {97};
  s.context_lens = {97};
  s.num_heads = 4;
  s.num_kv_heads = 1;
  PagedAttentionCase c = make_paged_attention_case(s, 11);
  EXPECT_LT(check_against(c, KvValues::Original), 2e-5);
  s.q_lens = {1};
  s.context_lens = {1};
  PagedAttentionCase one = make_paged_attention_case(s, 12);
  std::vector<float> out = run_attention(one);
  // One key: the output is that key's V exactly (for each query head of the group).
  for (int32_t h = 0; h < 4; ++h)
    for (int32_t i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(out[size_t(h * 64 + i)], one.v_orig[0][size_t(i)]);
}

// The same sequences laid out in blocks 0, 1, 2, ... in order give bit-identical outputs.
TEST(PagedAttention, ShuffledBlockTableEqualsContiguous) {
  for (KvDType t : {KvDType::F32, KvDType::INT8, KvDType::INT4}) {
    PagedAttentionSpec s = mixed_batch(16);
    s.dtype = t;
    PagedAttentionCase c = make_paged_attention_case(s, 21);
    PagedAttentionCase contiguous = c;
    const int64_t row = int64_t(s.block_size) * s.num_kv_heads;  // (token, head) rows per block
    const int64_t block_bytes = row * kv_head_bytes(t, s.head_dim);
    int32_t next = 0;
    for (size_t i = 0; i < c.context_lens.size(); ++i)
      for (int32_t b = 0; b < c.max_blocks_per_seq; ++b) {
        const int32_t src = c.block_tables[i * c.max_blocks_per_seq + b];
        if (src < 0) continue;
        const int32_t dst = next++;
        contiguous.block_tables[i * c.max_blocks_per_seq + b] = dst;
        std::copy_n(c.k_cache.begin() + src * block_bytes, block_bytes,
                    contiguous.k_cache.begin() + dst * block_bytes);
        std::copy_n(c.v_cache.begin() + src * block_bytes, block_bytes,
                    contiguous.v_cache.begin() + dst * block_bytes);
        if (kv_is_quantized(t)) {
          std::copy_n(c.k_scale.begin() + src * row, row, contiguous.k_scale.begin() + dst * row);
          std::copy_n(c.v_scale.begin() + src * row, row, contiguous.v_scale.begin() + dst * row);
        }
      }
    EXPECT_EQ(run_attention(c), run_attention(contiguous)) << kv_dtype_name(t);
  }
}

// A query row gives the same bits whether it is one row of a prefill chunk (tiled with its
// neighbours) or attended alone as a decode step at its position: scheduling (chunk sizes, prefix
// caching, preemption) must never change an output. Head sizes off the kernel's 8-wide lanes too.
TEST(PagedAttention, ARowsOutputDoesNotDependOnItsBatch) {
  for (KvDType t : {KvDType::F32, KvDType::BF16, KvDType::INT8, KvDType::INT4})
    for (int32_t D : {36, 128})
      for (int32_t bs : {16, 20}) {
        PagedAttentionSpec s;
        s.q_lens = {45};
        s.context_lens = {45};
        s.head_dim = D;
        s.block_size = bs;
        s.num_heads = 6;
        s.num_kv_heads = 2;
        s.dtype = t;
        PagedAttentionCase c = make_paged_attention_case(s, uint64_t(51 + D + bs));
        const std::vector<float> chunk = run_attention(c);
        const int64_t HD = int64_t(s.num_heads) * D;
        for (int32_t row : {0, 7, 8, 19, 20, 31, 44}) {
          PagedAttentionCase alone = c;
          alone.num_tokens = 1;
          alone.q.assign(c.q.begin() + row * HD, c.q.begin() + (row + 1) * HD);
          alone.cu_seqlens_q = {0, 1};
          alone.context_lens = {row + 1};
          const std::vector<float> want(chunk.begin() + row * HD, chunk.begin() + (row + 1) * HD);
          EXPECT_EQ(run_attention(alone), want)
              << kv_dtype_name(t) << " D=" << D << " block " << bs << " row " << row;
        }
      }
}

// Random shapes off the kernel's 8-wide lanes and 8-key score passes: head sizes with tails
// (4, 12, 36, 80), blocks of 1 to 33 tokens, GQA groups of 1 to 3, decode and prefill rows mixed.
TEST(PagedAttention, RandomShapesMatchTheDequantizedReference) {
  std::mt19937 rng(2026);
  const int32_t dims[] = {4, 8, 12, 36, 80, 128};
  const int32_t blocks[] = {1, 3, 8, 16, 20, 33};
  const KvDType dtypes[] = {KvDType::F32, KvDType::BF16, KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4};
  for (int trial = 0; trial < 24; ++trial) {
    PagedAttentionSpec s;
    s.head_dim = dims[rng() % std::size(dims)];
    s.block_size = blocks[rng() % std::size(blocks)];
    s.num_kv_heads = 1 + int32_t(rng() % 2);
    s.num_heads = s.num_kv_heads * (1 + int32_t(rng() % 3));
    s.dtype = dtypes[rng() % std::size(dtypes)];
    for (int seq = 0; seq < 3; ++seq) {
      const int32_t ctx = 1 + int32_t(rng() % 70);
      s.context_lens.push_back(ctx);
      s.q_lens.push_back(rng() % 2 ? 1 : 1 + int32_t(rng() % uint32_t(ctx)));
    }
    PagedAttentionCase c = make_paged_attention_case(s, 100 + uint64_t(trial));
    EXPECT_LT(check_against(c, KvValues::Stored), 2e-5)
        << kv_dtype_name(s.dtype) << " D=" << s.head_dim << " block " << s.block_size << " Hq "
        << s.num_heads << " Hkv " << s.num_kv_heads;
  }
}

// Stored: against attention over the dequantized cache (tight). Original: against the float
// K/V before storage; the bound is the format's quantization error (values in [-2, 2]).
TEST(PagedAttention, EveryKvDtype) {
  struct Want {
    KvDType dtype;
    double original_tol;
  };
  for (Want w : {Want{KvDType::F32, 2e-5}, Want{KvDType::F16, 2e-3}, Want{KvDType::BF16, 1.5e-2},
                 Want{KvDType::INT8, 2e-2}, Want{KvDType::FP8_E4M3, 0.15},
                 Want{KvDType::INT4, 0.45}}) {
    for (int32_t D : {64, 128}) {
      PagedAttentionSpec s = mixed_batch(16);
      s.dtype = w.dtype;
      s.head_dim = D;
      s.num_heads = 4;
      s.num_kv_heads = 2;
      PagedAttentionCase c = make_paged_attention_case(s, 31 + D);
      EXPECT_LT(check_against(c, KvValues::Stored), 2e-5) << kv_dtype_name(w.dtype) << " D=" << D;
      const double original = check_against(c, KvValues::Original);
      EXPECT_LT(original, w.original_tol) << kv_dtype_name(w.dtype) << " D=" << D;
      std::printf("  %-9s D=%-3d max error vs original K/V: %.2e\n",
                  std::string(kv_dtype_name(w.dtype)).c_str(), D, original);
    }
  }
}

TEST(PagedAttention, RejectsBadMeta) {
  PagedAttentionSpec s = mixed_batch(16);
  PagedAttentionCase c = make_paged_attention_case(s, 41);
  CpuBackend be;
  const int64_t T = c.num_tokens, HD = int64_t(s.num_heads) * s.head_dim;
  std::vector<float> out(size_t(T * HD));
  auto run = [&] {
    be.paged_attention(host_tensor(c.q, {T, HD}), c.host_layer(), c.host_meta(), 0.125f,
                       host_tensor(out, {T, HD}));
  };
  EXPECT_NO_THROW(run());
  PagedAttentionCase saved = c;
  c.block_tables[0] = c.num_blocks;  // block id out of range
  EXPECT_THROW(run(), Error);
  c = saved;
  c.context_lens[1] = 3;  // fewer cached tokens than the 7 queries
  EXPECT_THROW(run(), Error);
  c = saved;
  c.context_lens[0] = c.max_blocks_per_seq * s.block_size + 1;  // beyond the block table
  EXPECT_THROW(run(), Error);
  c = saved;
  c.cu_seqlens_q.back() -= 1;  // does not cover q
  EXPECT_THROW(run(), Error);
}

}  // namespace
}  // namespace nanovllm
