// build_batch_input / pad_decode_batch: the per-token and per-sequence rows of a step, and the
// even_contexts flag the CUDA backend sizes decode split-K by (true when every context is at
// least 80% of the longest, judged on the real sequences only, not a graph's padding rows).
#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <vector>

#include "engine/batch_builder.h"

namespace nanovllm {
namespace {

constexpr int32_t kBlock = 4, kWidth = 8;

// A decode step of sequences whose K/V cover contexts[i] - 1 tokens (one new token each).
struct DecodeBatch {
  std::vector<std::unique_ptr<Sequence>> seqs;
  ScheduledBatch batch;

  explicit DecodeBatch(const std::vector<int32_t>& contexts) {
    int32_t next_block = 0;
    for (int32_t ctx : contexts) {
      std::vector<int32_t> ids(static_cast<size_t>(ctx));
      std::iota(ids.begin(), ids.end(), 1);
      auto seq = std::make_unique<Sequence>(int64_t(seqs.size()), ids);
      seq->num_computed_tokens = ctx - 1;
      for (int32_t b = 0; b * kBlock < ctx; ++b) seq->block_table.push_back(next_block++);
      batch.seqs.push_back({seq.get(), 1, true});
      seqs.push_back(std::move(seq));
    }
  }
};

TEST(BatchBuilder, DecodeRowsAndContexts) {
  DecodeBatch d({5, 9});
  const BatchInput in = build_batch_input(d.batch, kBlock, kWidth);
  EXPECT_EQ(in.token_ids, (std::vector<int32_t>{5, 9}));
  EXPECT_EQ(in.positions, (std::vector<int32_t>{4, 8}));
  // sequence 0 has blocks 0, 1; sequence 1 blocks 2, 3, 4: position 8 is block 4, offset 0
  EXPECT_EQ(in.slot_mapping, (std::vector<int64_t>{1 * kBlock + 0, 4 * kBlock + 0}));
  EXPECT_EQ(in.context_lens, (std::vector<int32_t>{5, 9}));
  EXPECT_EQ(in.max_context_len, 9);
  EXPECT_TRUE(in.is_decode());
}

TEST(BatchBuilder, EvenContextsWhenTheShortestIsAtLeastFourFifthsOfTheLongest) {
  EXPECT_TRUE(build_batch_input(DecodeBatch({20, 20, 20}).batch, kBlock, kWidth).even_contexts);
  EXPECT_TRUE(build_batch_input(DecodeBatch({16, 20}).batch, kBlock, kWidth).even_contexts);
  EXPECT_FALSE(build_batch_input(DecodeBatch({15, 20}).batch, kBlock, kWidth).even_contexts);
  EXPECT_FALSE(build_batch_input(DecodeBatch({3, 30, 30}).batch, kBlock, kWidth).even_contexts);
  EXPECT_TRUE(build_batch_input(DecodeBatch({7}).batch, kBlock, kWidth).even_contexts);
  EXPECT_FALSE(build_batch_input(ScheduledBatch{}, kBlock, kWidth).even_contexts);
}

TEST(BatchBuilder, PaddingRowsKeepTheRealBatchsEvenness) {
  BatchInput in = build_batch_input(DecodeBatch({24, 25}).batch, kBlock, kWidth);
  pad_decode_batch(in, 4);  // two rows of context 1 added
  EXPECT_EQ(in.num_seqs(), 4);
  EXPECT_EQ(in.context_lens[3], 1);
  EXPECT_EQ(in.slot_mapping[3], -1);
  EXPECT_TRUE(in.even_contexts);
}

}  // namespace
}  // namespace nanovllm
