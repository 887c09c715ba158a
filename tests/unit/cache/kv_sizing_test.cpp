#include "cache/kv_sizing.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace nanovllm {
namespace {

constexpr KvCacheShape kQwen3_0_6B{28, 8, 128};  // layers, KV heads, head_dim

TEST(KvSizing, Qwen3BytesPerTokenCountScales) {
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, KvDType::BF16), 114688);
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, KvDType::F16), 114688);
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, KvDType::INT8), 59136);
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, KvDType::FP8_E4M3), 59136);
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, KvDType::INT4), 30464);
  EXPECT_EQ(kv_bytes_per_token(28, 8, 128, KvDType::F32), 229376);
}

TEST(KvSizing, OddShapesByHand) {
  // 3 layers x 2 (K,V) x 5 heads x (ceil(7/2) + 4) bytes for INT4 with head_dim 7.
  EXPECT_EQ(kv_bytes_per_token(3, 5, 7, KvDType::INT4), 3 * 2 * 5 * (4 + 4));
  EXPECT_EQ(kv_bytes_per_token(3, 5, 7, KvDType::INT8), 3 * 2 * 5 * (7 + 4));
  EXPECT_EQ(kv_bytes_per_block(17, {3, 5, 7}, KvDType::BF16), 17 * 3 * 2 * 5 * 14);
}

TEST(KvSizing, QuantizedDtypesGetMoreBlocksAtOneBudget) {
  for (int64_t budget : {int64_t{8} << 30, int64_t{3'000'000'017}, int64_t{123'456'789}}) {
    for (int32_t block_size : {16, 256}) {
      const double bf16 = static_cast<double>(num_blocks_for_budget(budget, block_size, kQwen3_0_6B, KvDType::BF16));
      const double int8 = static_cast<double>(num_blocks_for_budget(budget, block_size, kQwen3_0_6B, KvDType::INT8));
      const double int4 = static_cast<double>(num_blocks_for_budget(budget, block_size, kQwen3_0_6B, KvDType::INT4));
      EXPECT_GE(int8 / bf16, 1.93) << budget << " " << block_size;
      EXPECT_GE(int4 / bf16, 3.6) << budget << " " << block_size;
    }
  }
  // Whole blocks only: 8 GiB / (16 x 59136) rounds down.
  EXPECT_EQ(num_blocks_for_budget(int64_t{8} << 30, 16, kQwen3_0_6B, KvDType::INT8), 9078);
  EXPECT_EQ(num_blocks_for_budget(16 * 59136 - 1, 16, kQwen3_0_6B, KvDType::INT8), 0);
}

TEST(KvSizing, EstimatorReproducesTheProposalsFigures) {
  // 500 blocks x 256 tokens x 28 layers x 8 KV heads x 128 head_dim.
  const KvMemoryEstimate fp16 = estimate_kv_memory(kQwen3_0_6B, KvDType::F16, KvDType::F16, 500, 256, 2048);
  EXPECT_DOUBLE_EQ(fp16.total_mib, 14000.0);
  EXPECT_DOUBLE_EQ(fp16.saving, 0.0);
  const KvMemoryEstimate int8 = estimate_kv_memory(kQwen3_0_6B, KvDType::INT8, KvDType::BF16, 500, 256, 2048);
  EXPECT_DOUBLE_EQ(int8.total_mib, 7218.75);
  EXPECT_DOUBLE_EQ(int8.reference_total_mib, 14000.0);
  EXPECT_NEAR(int8.saving * 100, 48.4, 0.05);
  EXPECT_EQ(int8.total_bytes, int64_t{500} * 256 * 59136);
  EXPECT_EQ(int8.blocks_per_sequence, 8);
  EXPECT_EQ(int8.sequences_that_fit, 62);  // 500 / 8
}

TEST(KvSizing, EstimatorForBudgetCountsWholeSequences) {
  const KvMemoryEstimate e =
      estimate_kv_memory_for_budget(kQwen3_0_6B, KvDType::BF16, KvDType::BF16, int64_t{8} << 30, 16, 2049);
  EXPECT_EQ(e.num_blocks, (int64_t{8} << 30) / (16 * 114688));  // 4681
  EXPECT_EQ(e.blocks_per_sequence, 129);                       // 2049 tokens need a 129th block
  EXPECT_EQ(e.sequences_that_fit, 4681 / 129);
}

TEST(KvSizing, BadInputThrows) {
  EXPECT_THROW(kv_bytes_per_token(0, 8, 128, KvDType::BF16), Error);
  EXPECT_THROW(kv_bytes_per_token(28, 8, -1, KvDType::BF16), Error);
  EXPECT_THROW(kv_bytes_per_block(0, kQwen3_0_6B, KvDType::BF16), Error);
  EXPECT_THROW(num_blocks_for_budget(-1, 16, kQwen3_0_6B, KvDType::BF16), Error);
  EXPECT_THROW(estimate_kv_memory(kQwen3_0_6B, KvDType::INT8, KvDType::BF16, 10, 16, 0), Error);
}

}  // namespace
}  // namespace nanovllm
