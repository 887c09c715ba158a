#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "fake_model.h"
#include "scheduler/scheduler.h"

namespace nanovllm {
namespace {

using testing::FakeModel;

std::vector<int32_t> random_tokens(int32_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(1, 150000);
  std::vector<int32_t> out;
  for (int32_t i = 0; i < n; ++i) out.push_back(dist(gen));
  return out;
}

std::shared_ptr<Sequence> make_seq(int64_t id, std::vector<int32_t> prompt, int32_t max_tokens = 64,
                                   bool ignore_eos = false, std::vector<int32_t> stop_ids = {}) {
  SamplingParams params;
  params.max_tokens = max_tokens;
  params.ignore_eos = ignore_eos;
  params.stop_token_ids = std::move(stop_ids);
  return std::make_shared<Sequence>(id, std::move(prompt), params);
}

SchedulerConfig small_config(int32_t budget, int32_t num_blocks, int32_t max_num_seqs = 16) {
  SchedulerConfig c;
  c.max_num_seqs = max_num_seqs;
  c.max_num_batched_tokens = budget;
  c.max_model_len = 256;
  c.eos_token_ids = {2};
  c.block_size = 4;
  c.num_blocks = num_blocks;
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Scheduler, ChunkedPrefillSplitsLongPromptAndOnlyLastChunkSamples) {
  Scheduler s(small_config(/*budget=*/8, /*num_blocks=*/64));
  auto seq = make_seq(1, random_tokens(20, 1), /*max_tokens=*/4);
  s.add(seq);
  const std::vector<int32_t> chunks = {8, 8, 4};
  for (size_t step = 0; step < chunks.size(); ++step) {
    ScheduledBatch b = s.schedule();
    ASSERT_TRUE(b.is_prefill);
    ASSERT_EQ(b.seqs.size(), 1u);
    EXPECT_EQ(b.seqs[0].seq, seq.get());
    EXPECT_EQ(seq->num_computed_tokens, int32_t(step) * 8);
    EXPECT_EQ(b.seqs[0].num_new_tokens, chunks[step]);
    const bool last = step + 1 == chunks.size();
    EXPECT_EQ(b.seqs[0].samples, last);
    EXPECT_EQ(seq->status, SequenceStatus::RUNNING);
    EXPECT_EQ(seq->block_table.size(), 5u);  // the whole prompt's blocks from the first chunk
    EXPECT_EQ(s.num_waiting(), last ? 0 : 1);
    EXPECT_EQ(s.num_running(), last ? 1 : 0);
    if (!last) {
      EXPECT_THROW(s.postprocess(b, std::vector<int32_t>{5}), Error);  // nothing to sample
      s.postprocess(b, {});
    } else {
      s.postprocess(b, std::vector<int32_t>{5});
    }
  }
  EXPECT_EQ(seq->num_tokens(), 21);
  EXPECT_EQ(seq->num_computed_tokens, 20);
  ScheduledBatch d = s.schedule();
  EXPECT_FALSE(d.is_prefill);
  ASSERT_EQ(d.seqs.size(), 1u);
  EXPECT_EQ(d.seqs[0].num_new_tokens, 1);
  EXPECT_TRUE(d.seqs[0].samples);
}

TEST(Scheduler, SequenceMidPrefillContinuesBeforeNewOnes) {
  Scheduler s(small_config(8, 64));
  auto a = make_seq(1, random_tokens(20, 2));
  auto b = make_seq(2, random_tokens(3, 3));
  s.add(a);
  s.postprocess(s.schedule(), {});  // a: [0, 8)
  s.add(b);
  ScheduledBatch second = s.schedule();
  ASSERT_EQ(second.seqs.size(), 1u);  // the budget goes to a; b waits
  EXPECT_EQ(second.seqs[0].seq, a.get());
  EXPECT_TRUE(b->block_table.empty());
  s.postprocess(second, {});
  ScheduledBatch third = s.schedule();
  ASSERT_EQ(third.seqs.size(), 2u);
  EXPECT_EQ(third.seqs[0].seq, a.get());
  EXPECT_EQ(third.seqs[0].num_new_tokens, 4);
  EXPECT_EQ(third.seqs[1].seq, b.get());
  EXPECT_EQ(third.seqs[1].num_new_tokens, 3);
  EXPECT_EQ(third.num_samples(), 2);
  EXPECT_EQ(third.num_tokens(), 7);
}

TEST(Scheduler, TokenBudgetChunksTheSequenceThatDoesNotFit) {
  Scheduler s(small_config(/*budget=*/10, 64));
  for (int i = 0; i < 3; ++i) s.add(make_seq(i, random_tokens(4, 10 + i)));
  ScheduledBatch b = s.schedule();
  ASSERT_EQ(b.seqs.size(), 3u);
  EXPECT_EQ(b.seqs[0].num_new_tokens, 4);
  EXPECT_EQ(b.seqs[1].num_new_tokens, 4);
  EXPECT_EQ(b.seqs[2].num_new_tokens, 2);
  EXPECT_FALSE(b.seqs[2].samples);
  EXPECT_EQ(b.num_tokens(), 10);
}

TEST(Scheduler, MaxNumSeqsCapsBatchAndRunningSequences) {
  Scheduler s(small_config(100, 64, /*max_num_seqs=*/2));
  for (int i = 0; i < 3; ++i) s.add(make_seq(i, random_tokens(4, 20 + i)));
  ScheduledBatch b = s.schedule();
  ASSERT_TRUE(b.is_prefill);
  EXPECT_EQ(b.seqs.size(), 2u);
  s.postprocess(b, std::vector<int32_t>{5, 6});
  // Two are running: the third is not admitted, the step decodes the two.
  ScheduledBatch d = s.schedule();
  EXPECT_FALSE(d.is_prefill);
  EXPECT_EQ(d.seqs.size(), 2u);
  EXPECT_EQ(s.num_waiting(), 1);
}

TEST(Scheduler, CachedPrefixTokensDoNotCountAgainstBudget) {
  for (bool caching : {true, false}) {
    SchedulerConfig c = small_config(/*budget=*/8, 64);
    c.enable_prefix_caching = caching;
    Scheduler s(c);
    auto prompt = random_tokens(12, 30);
    auto a = make_seq(1, prompt, /*max_tokens=*/1);
    s.add(a);
    s.postprocess(s.schedule(), {});
    s.postprocess(s.schedule(), std::vector<int32_t>{9});
    ASSERT_TRUE(a->is_finished());
    auto b_prompt = std::vector<int32_t>(prompt.begin(), prompt.begin() + 8);
    for (int32_t t : random_tokens(6, 31)) b_prompt.push_back(t);
    auto b = make_seq(2, b_prompt, 1);
    s.add(b);
    ScheduledBatch first = s.schedule();
    ASSERT_EQ(first.seqs.size(), 1u);
    EXPECT_EQ(b->num_cached_tokens, caching ? 8 : 0);
    EXPECT_EQ(b->num_computed_tokens, caching ? 8 : 0);
    EXPECT_EQ(first.seqs[0].num_new_tokens, caching ? 6 : 8);
    EXPECT_EQ(first.seqs[0].samples, caching);
    EXPECT_EQ(s.block_manager().hit_tokens(), caching ? 8 : 0);
  }
}

TEST(Scheduler, SkipPrefixCacheComputesEveryPosition) {
  Scheduler s(small_config(100, 64));
  auto prompt = random_tokens(12, 32);
  auto a = make_seq(1, prompt, 1);
  s.add(a);
  s.postprocess(s.schedule(), std::vector<int32_t>{9});
  auto again = make_seq(2, prompt, 1);
  again->skip_prefix_cache = true;
  s.add(again);
  ScheduledBatch b = s.schedule();
  EXPECT_EQ(again->num_cached_tokens, 0);
  EXPECT_EQ(b.seqs[0].num_new_tokens, 12);
  s.postprocess(b, std::vector<int32_t>{9});
  auto cached = make_seq(3, prompt, 1);
  s.add(cached);
  s.schedule();
  EXPECT_EQ(cached->num_cached_tokens, 8);
}

TEST(Scheduler, DecodeBatchHasOneTokenPerRunningSequenceInOrder) {
  Scheduler s(small_config(100, 64));
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (int i = 0; i < 3; ++i) {
    seqs.push_back(make_seq(i, random_tokens(3 + i, 40 + i)));
    s.add(seqs.back());
  }
  s.postprocess(s.schedule(), std::vector<int32_t>{5, 6, 7});
  ScheduledBatch d = s.schedule();
  ASSERT_FALSE(d.is_prefill);
  ASSERT_EQ(d.seqs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.seqs[size_t(i)].seq, seqs[size_t(i)].get());
    EXPECT_EQ(d.seqs[size_t(i)].num_new_tokens, 1);
    EXPECT_TRUE(d.seqs[size_t(i)].samples);
    EXPECT_EQ(seqs[size_t(i)]->num_computed_tokens, seqs[size_t(i)]->num_tokens() - 1);
  }
  s.postprocess(d, std::vector<int32_t>{8, 9, 10});
  EXPECT_EQ(seqs[2]->completion_token_ids().size(), 2u);
  EXPECT_EQ(seqs[2]->last_token(), 10);
}

TEST(Scheduler, PreemptsMostRecentWhenBlocksRunOutAndRecomputes) {
  const int32_t kBlocks = 4;
  Scheduler s(small_config(64, kBlocks));
  FakeModel model(kBlocks, 4);
  auto a = make_seq(1, random_tokens(6, 50), /*max_tokens=*/6, /*ignore_eos=*/true);
  auto b = make_seq(2, random_tokens(6, 51), 6, true);
  s.add(a);
  s.add(b);
  bool saw_preemption_step = false;
  for (int step = 0; !s.is_finished(); ++step) {
    ASSERT_LT(step, 100);
    ScheduledBatch batch = s.schedule();
    if (s.num_preemptions() == 1 && !saw_preemption_step) {
      // a and b hold 2 blocks each; a's 9th token needs a third: b (added last) gives way.
      saw_preemption_step = true;
      EXPECT_FALSE(batch.is_prefill);
      ASSERT_EQ(batch.seqs.size(), 1u);
      EXPECT_EQ(batch.seqs[0].seq, a.get());
      EXPECT_EQ(a->num_tokens(), 9);
      EXPECT_EQ(b->status, SequenceStatus::WAITING);
      EXPECT_EQ(b->num_computed_tokens, 0);
      EXPECT_TRUE(b->block_table.empty());
      EXPECT_EQ(s.num_waiting(), 1);
    }
    s.postprocess(batch, model.run(batch, s.block_manager()));
  }
  EXPECT_TRUE(saw_preemption_step);
  EXPECT_GE(s.num_preemptions(), 1);
  // b was recomputed from scratch and still gets exactly max_tokens, the same ones.
  for (const auto& seq : {a, b}) {
    EXPECT_EQ(seq->num_tokens(), 12);
    EXPECT_EQ(seq->finish_reason, FinishReason::LENGTH);
    std::vector<int32_t> expected(seq->token_ids.begin(), seq->token_ids.begin() + 6);
    while (expected.size() < 12) expected.push_back(model.next_token(expected));
    EXPECT_EQ(seq->token_ids, expected);
  }
  EXPECT_EQ(s.block_manager().num_free_blocks(), kBlocks);
}

TEST(Scheduler, FinishesOnEosUnlessIgnoredOnStopIdsAndOnMaxTokens) {
  Scheduler s(small_config(100, 64));
  const int32_t eos = 2;
  auto stops_on_eos = make_seq(1, random_tokens(5, 60), 10);
  auto ignores_eos = make_seq(2, random_tokens(5, 61), 3, /*ignore_eos=*/true);
  auto stop_id = make_seq(3, random_tokens(5, 62), 10, /*ignore_eos=*/true, {77});
  auto max_tokens = make_seq(4, random_tokens(5, 63), 2);
  for (auto& q : {stops_on_eos, ignores_eos, stop_id, max_tokens}) s.add(q);

  auto finished = s.postprocess(s.schedule(), std::vector<int32_t>{eos, eos, 5, 5});
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0], stops_on_eos);
  EXPECT_EQ(stops_on_eos->finish_reason, FinishReason::STOP);
  EXPECT_TRUE(stops_on_eos->is_finished());
  EXPECT_TRUE(stops_on_eos->block_table.empty());
  EXPECT_EQ(stops_on_eos->last_token(), eos);  // the eos is kept in token_ids

  finished = s.postprocess(s.schedule(), std::vector<int32_t>{eos, 77, 6});
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(stop_id->finish_reason, FinishReason::STOP);
  EXPECT_EQ(max_tokens->finish_reason, FinishReason::LENGTH);
  EXPECT_EQ(max_tokens->num_completion_tokens(), 2);
  EXPECT_FALSE(ignores_eos->is_finished());

  finished = s.postprocess(s.schedule(), std::vector<int32_t>{eos});
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(ignores_eos->finish_reason, FinishReason::LENGTH);
  EXPECT_EQ(ignores_eos->num_completion_tokens(), 3);
  EXPECT_TRUE(s.is_finished());
  EXPECT_EQ(s.block_manager().num_free_blocks(), 64);
  EXPECT_TRUE(s.schedule().empty());
}

TEST(Scheduler, MaxModelLenStopsGenerationAndRejectsLongPrompts) {
  SchedulerConfig c = small_config(100, 64);
  c.max_model_len = 10;
  Scheduler s(c);
  auto grows = make_seq(1, random_tokens(8, 70), 100, true);
  auto at_limit = make_seq(2, random_tokens(10, 71), 100, true);
  s.add(grows);
  s.add(at_limit);
  FakeModel model(64, 4);
  for (int step = 0; !s.is_finished(); ++step) {
    ASSERT_LT(step, 20);
    ScheduledBatch batch = s.schedule();
    s.postprocess(batch, model.run(batch, s.block_manager()));
  }
  EXPECT_EQ(grows->num_tokens(), 10);
  EXPECT_EQ(grows->finish_reason, FinishReason::LENGTH);
  EXPECT_EQ(at_limit->num_completion_tokens(), 1);
  EXPECT_EQ(at_limit->finish_reason, FinishReason::LENGTH);

  const std::string too_long = error_of([&] { s.add(make_seq(3, random_tokens(11, 72))); });
  EXPECT_NE(too_long.find("max_model_len"), std::string::npos) << too_long;
  EXPECT_TRUE(s.is_finished());
}

TEST(Scheduler, CacheCapacityRejectsHugePromptsAndCapsGrowth) {
  SchedulerConfig c = small_config(100, /*num_blocks=*/3);
  c.max_model_len = 1000;
  Scheduler s(c);
  EXPECT_EQ(s.max_sequence_len(), 12);
  const std::string msg = error_of([&] { s.add(make_seq(1, random_tokens(13, 80))); });
  EXPECT_NE(msg.find("blocks"), std::string::npos) << msg;
  auto seq = make_seq(2, random_tokens(5, 81), 100, true);
  s.add(seq);
  FakeModel model(3, 4);
  for (int step = 0; !s.is_finished(); ++step) {
    ASSERT_LT(step, 20);
    ScheduledBatch batch = s.schedule();
    s.postprocess(batch, model.run(batch, s.block_manager()));
  }
  EXPECT_EQ(seq->num_tokens(), 12);
  EXPECT_EQ(seq->finish_reason, FinishReason::LENGTH);
  EXPECT_EQ(s.num_preemptions(), 0);
}

TEST(Scheduler, FinishByCallerFreesBlocksWhereverTheSequenceIs) {
  Scheduler s(small_config(8, 16));
  auto running = make_seq(1, random_tokens(4, 90));
  auto mid_prefill = make_seq(2, random_tokens(20, 91));
  auto waiting = make_seq(3, random_tokens(4, 92));
  s.add(running);
  s.add(mid_prefill);
  s.add(waiting);
  ScheduledBatch b = s.schedule();  // running: 4 tokens, mid_prefill: 4 of 20
  ASSERT_EQ(b.seqs.size(), 2u);
  s.postprocess(b, std::vector<int32_t>{5});
  EXPECT_EQ(s.block_manager().num_free_blocks(), 16 - 1 - 5);
  EXPECT_TRUE(s.finish(2, FinishReason::ABORT));
  EXPECT_EQ(mid_prefill->finish_reason, FinishReason::ABORT);
  EXPECT_TRUE(mid_prefill->block_table.empty());
  EXPECT_TRUE(s.finish(1, FinishReason::STOP_STRING));
  EXPECT_EQ(running->status, SequenceStatus::FINISHED);
  EXPECT_EQ(s.block_manager().num_free_blocks(), 16);
  EXPECT_TRUE(s.finish(3, FinishReason::ABORT));
  EXPECT_FALSE(s.finish(3, FinishReason::ABORT));
  EXPECT_FALSE(s.finish(42, FinishReason::ABORT));
  EXPECT_THROW(s.finish(1, FinishReason::NONE), Error);
  EXPECT_TRUE(s.is_finished());
}

TEST(Scheduler, RejectsBadConfigAndInput) {
  SchedulerConfig c = small_config(8, 16);
  c.max_num_batched_tokens = 0;
  EXPECT_NE(error_of([&] { Scheduler s(c); }).find("max_num_batched_tokens"), std::string::npos);
  c = small_config(8, 0);
  EXPECT_NE(error_of([&] { Scheduler s(c); }).find("num_blocks"), std::string::npos);
  Scheduler s(small_config(8, 16));
  EXPECT_THROW(s.add(nullptr), Error);
  EXPECT_THROW(make_seq(1, {}), Error);
  auto seq = make_seq(1, random_tokens(3, 93));
  s.add(seq);
  EXPECT_THROW(s.add(seq), Error);  // already queued
  EXPECT_THROW(s.add(make_seq(1, random_tokens(3, 94))), Error);  // same id
  EXPECT_EQ(s.num_waiting(), 1);
}

// Many requests with shared prefixes, arriving over time, under several budgets and cache sizes:
// every configuration must give each request the tokens a perfect cache gives.
struct Request {
  std::vector<int32_t> prompt;
  int32_t max_tokens;
  bool ignore_eos;
};

std::vector<Request> random_requests(uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<std::vector<int32_t>> bases = {random_tokens(8, seed + 1), random_tokens(5, seed + 2),
                                             {}};
  std::vector<Request> out;
  for (int i = 0; i < 30; ++i) {
    Request r;
    r.prompt = bases[gen() % bases.size()];
    const int32_t extra = int32_t(gen() % 14) + (r.prompt.empty() ? 1 : 0);
    for (int32_t t : random_tokens(extra, seed * 100 + uint32_t(i))) r.prompt.push_back(t);
    r.max_tokens = 1 + int32_t(gen() % 16);
    r.ignore_eos = gen() % 2;
    out.push_back(r);
  }
  return out;
}

std::vector<int32_t> reference_tokens(const FakeModel& model, const Request& r, int32_t eos,
                                      int32_t max_len) {
  std::vector<int32_t> tokens = r.prompt;
  for (int32_t n = 1;; ++n) {
    const int32_t t = model.next_token(tokens);
    tokens.push_back(t);
    if ((!r.ignore_eos && t == eos) || n >= r.max_tokens || int32_t(tokens.size()) >= max_len) break;
  }
  return tokens;
}

TEST(Scheduler, RandomWorkloadsMatchReferenceUnderEveryConfiguration) {
  struct Case {
    int32_t budget, num_blocks, max_num_seqs;
    bool caching;
  };
  const Case cases[] = {{256, 256, 64, true}, {256, 256, 64, false}, {7, 256, 3, true},
                        {16, 12, 4, true},    {16, 12, 4, false},    {5, 10, 8, true}};
  const int32_t kEos = 3, kMaxLen = 40;
  int64_t total_preemptions = 0, total_hits = 0;
  for (uint32_t seed : {1u, 2u}) {
    const std::vector<Request> requests = random_requests(seed);
    for (const Case& k : cases) {
      SCOPED_TRACE("budget " + std::to_string(k.budget) + " blocks " + std::to_string(k.num_blocks));
      SchedulerConfig c = small_config(k.budget, k.num_blocks, k.max_num_seqs);
      c.max_model_len = kMaxLen;
      c.eos_token_ids = {kEos};
      c.enable_prefix_caching = k.caching;
      Scheduler s(c);
      FakeModel model(k.num_blocks, 4, /*vocab=*/20);  // small vocab: eos is sampled now and then
      std::vector<std::shared_ptr<Sequence>> seqs;
      size_t next = 0;
      for (int step = 0; next < requests.size() || !s.is_finished(); ++step) {
        ASSERT_LT(step, 5000);
        for (int i = 0; i < 3 && next < requests.size(); ++i, ++next) {
          const Request& r = requests[next];
          seqs.push_back(make_seq(int64_t(next), r.prompt, r.max_tokens, r.ignore_eos));
          s.add(seqs.back());
        }
        ScheduledBatch batch = s.schedule();
        if (batch.empty()) continue;
        EXPECT_LE(int32_t(batch.seqs.size()), k.max_num_seqs);
        if (batch.is_prefill) {
          EXPECT_LE(batch.num_tokens(), k.budget);
        }
        EXPECT_LE(s.num_running(), k.max_num_seqs);
        s.postprocess(batch, model.run(batch, s.block_manager()));
        if (::testing::Test::HasFailure()) return;
      }
      for (size_t i = 0; i < requests.size(); ++i)
        EXPECT_EQ(seqs[i]->token_ids, reference_tokens(model, requests[i], kEos, kMaxLen)) << "request " << i;
      EXPECT_EQ(s.block_manager().num_free_blocks(), k.num_blocks);
      if (!k.caching) {
        EXPECT_EQ(s.block_manager().hit_tokens(), 0);
      }
      total_preemptions += s.num_preemptions();
      total_hits += s.block_manager().hit_tokens();
    }
  }
  EXPECT_GT(total_preemptions, 0);  // the small caches did preempt
  EXPECT_GT(total_hits, 0);         // shared prefixes did hit
}

}  // namespace
}  // namespace nanovllm
