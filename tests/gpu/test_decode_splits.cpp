// The decode-attention split choice (a host function of the CUDA backend; no GPU needed):
// enough CTAs for min_waves waves, no split once there are, never a runaway number of splits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace nanovllm::cuda {
namespace {

constexpr int32_t kHkv = 8;          // Qwen3-0.6B
constexpr int32_t kResident = 1056;  // 132 SMs x 8 CTAs (the BF16 kernel on an H200)

TEST(DecodeSplits, QuantizedCachesAskForOneWave) {
  // W1 on an H100 (2026-12-07): INT8 fastest at min_waves 1, BF16 at 2 (kernels.h).
  EXPECT_EQ(default_decode_min_waves(KvDType::BF16), 2);
  EXPECT_EQ(default_decode_min_waves(KvDType::F16), 2);
  EXPECT_EQ(default_decode_min_waves(KvDType::F32), 2);
  for (KvDType q : {KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4})
    EXPECT_EQ(default_decode_min_waves(q), 1);
  // INT8 at batch 128 (4 CTAs/SM: 528 resident): 1,024 CTAs, no split; BF16's min_waves 2
  // would split it in two.
  EXPECT_EQ(decode_attention_splits(128, kHkv, 2048, 528, default_decode_min_waves(KvDType::INT8)), 1);
  EXPECT_EQ(decode_attention_splits(128, kHkv, 2048, 528, 2), 2);
}

TEST(DecodeSplits, NoSplitOnceTheBatchFillsTheWaves) {
  EXPECT_EQ(decode_attention_splits(264, kHkv, 4096, kResident, 2), 1);  // 2112 CTAs = 2 waves
  EXPECT_EQ(decode_attention_splits(512, kHkv, 4096, kResident, 2), 1);
  EXPECT_EQ(decode_attention_splits(132, kHkv, 4096, kResident, 1), 1);  // 1 wave asked for
}

TEST(DecodeSplits, JustEnoughSplitsForTheWavesAtLargeBatches) {
  // Batch 256: 2048 CTAs, just short of 2 waves: 2 splits, not the 17 that shaving a partial
  // wave would pick (f549b4a's defect).
  EXPECT_EQ(decode_attention_splits(256, kHkv, 4096, kResident, 2), 2);
  for (int32_t batch = 1; batch <= 512; ++batch) {
    const int32_t s = decode_attention_splits(batch, kHkv, 4096, kResident, 2);
    const int64_t least = (2 * int64_t(kResident) + batch * kHkv - 1) / (batch * kHkv);
    EXPECT_GE(s, std::min<int64_t>(least, 64)) << batch;
    EXPECT_LE(s, std::min<int64_t>(2 * least, 64)) << batch;
    EXPECT_GE(int64_t(s) * batch * kHkv, std::min<int64_t>(2 * kResident, 64 * batch * kHkv)) << batch;
  }
}

TEST(DecodeSplits, BoundedByTheContextAndSixtyFour) {
  EXPECT_EQ(decode_attention_splits(1, kHkv, 4096, kResident, 2), 64);
  EXPECT_EQ(decode_attention_splits(1, kHkv, 100, kResident, 2), 4);  // one split per 32 tokens
  EXPECT_EQ(decode_attention_splits(1, kHkv, 1, kResident, 2), 1);
  EXPECT_EQ(decode_attention_splits(0, kHkv, 4096, kResident, 2), 64);  // empty batch: harmless
}

// Equal contexts (decode_attention_even_splits): the split counts that measured fastest on an
// H100 (tools/decode_attention_bench splits, docs/benchmarks.md), 132 SMs.
TEST(DecodeSplits, EvenContextsFillOneRoundWithTheFewestSplits) {
  constexpr int32_t kInt8 = 132 * 4, kBf16 = 132 * 7;  // resident CTAs of each kernel
  EXPECT_EQ(decode_attention_even_splits(32, kHkv, 4096, kInt8), 2);   // 512 CTAs: 103 us
  EXPECT_EQ(decode_attention_even_splits(64, kHkv, 2048, kInt8), 1);   // 512 CTAs: 100 us
  EXPECT_EQ(decode_attention_even_splits(128, kHkv, 1024, kInt8), 1);  // 105 us
  EXPECT_EQ(decode_attention_even_splits(64, kHkv, 2048, kBf16), 1);   // 190 us; S = 2: 232
  const int32_t s = decode_attention_even_splits(32, kHkv, 4096, kBf16);
  EXPECT_TRUE(s == 2 || s == 3) << s;  // 194 / 190 us; S = 4 (1.1 rounds): 229
}

TEST(DecodeSplits, EvenContextsLeaveNoThinLastRoundAfterOneFullOne) {
  for (int32_t resident : {528, 924, 1056})
    for (int32_t batch = 1; batch <= 512; ++batch) {
      const int32_t s = decode_attention_even_splits(batch, kHkv, 1 << 20, resident);
      const int64_t ctas = int64_t(s) * batch * kHkv, rest = ctas % resident;
      ASSERT_GE(s, 1);
      ASSERT_LE(s, 64);
      // A last round under a quarter of the GPU costs about half a round: only acceptable
      // behind at least two full ones.
      if (rest != 0 && rest * 4 < resident && ctas > resident) {
        EXPECT_GE(ctas / resident, 2) << batch << " x " << s << " on " << resident;
      }
      if (ctas * 2 < resident) {  // more than half the GPU idle: a split more would have helped
        EXPECT_EQ(s, 64) << batch << " on " << resident;
      }
    }
  EXPECT_EQ(decode_attention_even_splits(1, kHkv, 100, 1056), 4);  // one split per 32 tokens
  EXPECT_EQ(decode_attention_even_splits(0, kHkv, 4096, 1056), 64);
}

}  // namespace
}  // namespace nanovllm::cuda
