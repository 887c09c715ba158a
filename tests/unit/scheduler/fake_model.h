#pragma once
// A stand-in for the model runner: its "KV cache" stores each token id at the slot the block table
// gives, and the next token is a hash of the context read back through the block table. Wrong
// block tables, unwritten cached blocks or overwritten shared blocks change the output.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "scheduler/scheduler.h"

namespace nanovllm::testing {

class FakeModel {
 public:
  FakeModel(int32_t num_blocks, int32_t block_size, int32_t vocab = 1000)
      : block_size_(block_size), vocab_(vocab), slots_(size_t(num_blocks) * size_t(block_size), -1) {}

  // The token a perfect cache gives after this context: independent of how it was scheduled.
  int32_t next_token(const std::vector<int32_t>& context) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : context) h = (h ^ uint64_t(uint32_t(t))) * 1099511628211ull;
    return int32_t(h % uint64_t(vocab_));
  }

  // Runs one scheduled batch: stores its tokens and samples where asked. Checks the scheduler's
  // invariants along the way.
  std::vector<int32_t> run(const ScheduledBatch& batch, const BlockManager& bm) {
    std::vector<int32_t> sampled;
    for (const ScheduledSeq& s : batch.seqs) {
      const Sequence& seq = *s.seq;
      const int32_t start = seq.num_computed_tokens, end = start + s.num_new_tokens;
      EXPECT_GT(s.num_new_tokens, 0);
      EXPECT_LE(end, seq.num_tokens());
      EXPECT_EQ(s.samples, end == seq.num_tokens());
      EXPECT_GE(int64_t(seq.block_table.size()) * block_size_, int64_t(end));
      for (int32_t p = start; p < end; ++p) {
        const int32_t block = seq.block_table[size_t(p / block_size_)];
        EXPECT_EQ(bm.ref_count(block), 1) << "write into a shared block " << block;
        slots_[size_t(block) * size_t(block_size_) + size_t(p % block_size_)] = seq.token_ids[size_t(p)];
      }
      if (!s.samples) continue;
      std::vector<int32_t> context(static_cast<size_t>(end));
      for (int32_t p = 0; p < end; ++p)
        context[size_t(p)] =
            slots_[size_t(seq.block_table[size_t(p / block_size_)]) * size_t(block_size_) + size_t(p % block_size_)];
      EXPECT_EQ(context, std::vector<int32_t>(seq.token_ids.begin(), seq.token_ids.begin() + end))
          << "request " << seq.id << " reads a wrong cache";
      sampled.push_back(next_token(context));
    }
    return sampled;
  }

 private:
  int32_t block_size_;
  int32_t vocab_;
  std::vector<int32_t> slots_;  // [num_blocks * block_size] token id stored at each slot
};

}  // namespace nanovllm::testing
