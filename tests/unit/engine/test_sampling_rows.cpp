// sampling_rows: one row per sampling sequence of a step, in batch order, with its request's
// parameters as requested (a near-zero temperature included: the backends sample it greedily).
#include <gtest/gtest.h>

#include <vector>

#include "engine/sampling_rows.h"

namespace nanovllm {
namespace {

Sequence make_seq(int64_t id, float temperature, int32_t top_k, float top_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.seed = 1000 + uint64_t(id);
  return Sequence(id, {1, 2, 3}, p);
}

// The row of a batch of s alone, sampling.
SamplingRow only_row(Sequence& s) {
  ScheduledBatch batch;
  batch.seqs = {{&s, 3, true}};
  return sampling_rows(batch).at(0);
}

TEST(SamplingRows, OneRowPerSamplingSequenceInBatchOrder) {
  Sequence a = make_seq(1, 0.7f, 40, 0.9f), b = make_seq(2, 1.f, -1, 1.f), c = make_seq(3, 0.f, -1, 1.f);
  b.append_token(9);
  ScheduledBatch batch;
  batch.seqs = {{&a, 3, true}, {&b, 1, false}, {&c, 3, true}};  // b's chunk does not sample
  const std::vector<SamplingRow> rows = sampling_rows(batch);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_FLOAT_EQ(rows[0].temperature, 0.7f);
  EXPECT_EQ(rows[0].top_k, 40);
  EXPECT_FLOAT_EQ(rows[0].top_p, 0.9f);
  EXPECT_EQ(rows[0].seed, 1001u);
  EXPECT_EQ(rows[0].step, 0u);
  EXPECT_EQ(rows[1].seed, 1003u);
  EXPECT_FLOAT_EQ(rows[1].temperature, 0.f);
}

TEST(SamplingRows, TemperatureIsPassedAsRequested) {
  // Near-zero temperatures reach the backend as they are: its sampler treats them as greedy
  // (Sample.NearZeroTemperatureIsGreedy).
  for (float t : {1e-45f, 1e-38f, 9.9e-6f, 1e-5f, 0.6f}) {
    Sequence s = make_seq(1, t, -1, 1.f);
    EXPECT_EQ(only_row(s).temperature, t) << t;
  }
}

}  // namespace
}  // namespace nanovllm
