// stories260K against llama2.c's greedy outputs (reference.json, produced outside this project):
// every entry token for token, from token ids and from text, in one batch and one at a time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "e2e/e2e_util.h"
#include "engine/llm_engine.h"

namespace nanovllm::e2e {
namespace {

TEST(StoriesReference, EveryEntryReproducedTokenForToken) {
  const auto refs = stories_references();
  ASSERT_EQ(refs.size(), 8u);
  LLM llm(stories_dir().string(), cpu_config());
  for (const auto& ref : refs) {
    const auto out = llm.generate({Prompt(ref.prompt_ids)}, greedy(int32_t(ref.output_ids.size())));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].prompt_token_ids, ref.prompt_ids) << ref.prompt;
    EXPECT_EQ(out[0].token_ids, ref.output_ids) << ref.prompt << " (" << ref.output_ids.size() << ")";
    EXPECT_EQ(out[0].text, ref.completion_text) << ref.prompt;
    EXPECT_EQ(out[0].finish_reason, "length");
    EXPECT_TRUE(out[0].finished);
  }
}

TEST(StoriesReference, TextPromptsEncodeToTheReferenceIds) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  for (const auto& ref : refs) EXPECT_EQ(llm.encode(ref.prompt), ref.prompt_ids) << ref.prompt;
  // The text path end to end: the first 60-step entry of each prompt.
  std::vector<Prompt> prompts;
  std::vector<SamplingParams> params;
  for (size_t i = 0; i < refs.size(); i += 2) {
    prompts.emplace_back(refs[i].prompt);
    params.push_back(greedy(int32_t(refs[i].output_ids.size())));
  }
  const auto out = llm.generate(prompts, params);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].prompt_token_ids, refs[2 * i].prompt_ids);
    EXPECT_EQ(out[i].token_ids, refs[2 * i].output_ids) << refs[2 * i].prompt;
  }
}

TEST(StoriesReference, OneBatchEqualsOneAtATime) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  const auto batched = llm.generate(id_prompts(refs), greedy_params(refs));
  ASSERT_EQ(batched.size(), refs.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    const auto single =
        llm.generate({Prompt(refs[i].prompt_ids)}, greedy(int32_t(refs[i].output_ids.size())));
    EXPECT_EQ(batched[i].token_ids, single[0].token_ids) << i;
    EXPECT_EQ(batched[i].token_ids, refs[i].output_ids) << i;
    EXPECT_EQ(batched[i].text, single[0].text) << i;
  }
}

TEST(StoriesReference, StepwiseApiGivesTheSameTokens) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  std::vector<int64_t> ids;
  for (size_t i = 0; i < refs.size(); i += 3)
    ids.push_back(llm.add_request(refs[i].prompt_ids, greedy(int32_t(refs[i].output_ids.size()))));
  std::map<int64_t, std::vector<int32_t>> finished;
  int steps = 0;
  while (!llm.is_finished()) {
    ASSERT_LT(++steps, 10000) << "the engine does not finish";
    for (const RequestOutput& o : llm.step())
      if (o.finished) finished[o.request_id] = o.token_ids;
  }
  ASSERT_EQ(finished.size(), ids.size());
  for (size_t k = 0; k < ids.size(); ++k) EXPECT_EQ(finished[ids[k]], refs[3 * k].output_ids);
}

// A long-running caller (the server) steps forever: a request reported finished must not stay
// in the engine.
TEST(StoriesReference, StepReportsAFinishedRequestOnceThenForgetsIt) {
  const auto refs = stories_references();
  Config config = cpu_config();
  config.model = stories_dir().string();
  LLMEngine engine(config);
  const int64_t a = engine.add_request(refs[0].prompt_ids, greedy(5));
  const int64_t b = engine.add_request(refs[2].prompt_ids, greedy(9));
  std::map<int64_t, int> finished_reports;
  for (int steps = 0; !engine.is_finished(); ++steps) {
    ASSERT_LT(steps, 1000);
    for (const RequestOutput& o : engine.step())
      if (o.finished) ++finished_reports[o.request_id];
  }
  EXPECT_EQ(finished_reports[a], 1);
  EXPECT_EQ(finished_reports[b], 1);
  EXPECT_THROW(engine.take_output(a), Error);
  EXPECT_THROW(engine.take_output(b), Error);
  engine.abort_request(a);  // a late abort of a forgotten request is harmless
  EXPECT_TRUE(engine.step().empty());
}

// Delta outputs (what the server streams) add up to the cumulative ones, and no delta is ever
// cut afterwards by a stop string: every prefix reported is a prefix of the final text.
TEST(StoriesReference, DeltaOutputsAddUpAndAreNeverTakenBack) {
  const auto refs = stories_references();
  // Stops that end a completion mid-way, one that never matches but keeps nearly matching, none.
  const std::vector<std::vector<std::string>> stops = {{"red ball"}, {"Lily", "park."}, {"She wanted to fly"}, {}};
  auto run = [&](OutputKind kind, std::map<int64_t, RequestOutput>& out, std::map<int64_t, int>& prompt_reports) {
    LLM llm(stories_dir().string(), cpu_config());
    std::vector<int64_t> ids;
    for (size_t i = 0; i < refs.size(); ++i) {
      SamplingParams p = greedy(int32_t(refs[i].output_ids.size()));
      p.stop = stops[i % stops.size()];
      ids.push_back(llm.add_request(refs[i].prompt_ids, p));
    }
    for (int steps = 0; !llm.is_finished(); ++steps) {
      ASSERT_LT(steps, 10000);
      for (const RequestOutput& o : llm.step(kind)) {
        RequestOutput& acc = out[o.request_id];
        if (!o.prompt_token_ids.empty()) ++prompt_reports[o.request_id];
        if (kind == OutputKind::kCumulative) {
          acc = o;
          continue;
        }
        acc.text += o.text;
        acc.token_ids.insert(acc.token_ids.end(), o.token_ids.begin(), o.token_ids.end());
        acc.finished = o.finished;
        acc.finish_reason = o.finish_reason;
      }
    }
    // Renumber by submission order.
    std::map<int64_t, RequestOutput> by_order;
    for (size_t i = 0; i < ids.size(); ++i) by_order[int64_t(i)] = out[ids[i]];
    out = by_order;
  };
  std::map<int64_t, RequestOutput> whole, deltas;
  std::map<int64_t, int> whole_prompts, delta_prompts;
  run(OutputKind::kCumulative, whole, whole_prompts);
  run(OutputKind::kDelta, deltas, delta_prompts);
  int stopped = 0, expected_stops = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    for (const std::string& stop : stops[i % stops.size()])
      if (refs[i].completion_text.find(stop) != std::string::npos) {
        ++expected_stops;
        break;
      }
    const RequestOutput& w = whole[int64_t(i)];
    const RequestOutput& d = deltas[int64_t(i)];
    EXPECT_EQ(d.text, w.text) << i;
    EXPECT_EQ(d.token_ids, w.token_ids) << i;
    EXPECT_EQ(d.finish_reason, w.finish_reason) << i;
    EXPECT_TRUE(d.finished);
    EXPECT_EQ(w.text, refs[i].completion_text.substr(0, w.text.size())) << i;
    stopped += w.finish_reason == "stop";
  }
  EXPECT_EQ(stopped, expected_stops);  // every completion that holds a stop string was cut there
  EXPECT_GE(stopped, 3);
  for (const auto& [id, n] : delta_prompts) EXPECT_EQ(n, 1) << "request " << id;
}

// Logprobs of generated tokens equal the teacher-forced log-probabilities of the same tokens
// (LLM::score: one prefill over prompt + completion), and greedy picks the most likely token.
TEST(StoriesReference, SampledLogprobsMatchTheTeacherForcedOnes) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  for (size_t i : {size_t(0), size_t(4)}) {
    SamplingParams p = greedy(int32_t(refs[i].output_ids.size()));
    p.logprobs = 3;
    const auto out = llm.generate({Prompt(refs[i].prompt_ids)}, p);
    ASSERT_EQ(out[0].token_ids, refs[i].output_ids);
    ASSERT_EQ(out[0].logprobs.size(), out[0].token_ids.size());
    std::vector<int32_t> all = refs[i].prompt_ids;
    all.insert(all.end(), refs[i].output_ids.begin(), refs[i].output_ids.end());
    const std::vector<double> forced = llm.score(all);
    for (size_t t = 0; t < out[0].token_ids.size(); ++t) {
      const TokenLogprob& lp = out[0].logprobs[t];
      ASSERT_EQ(lp.top.size(), 3u);
      EXPECT_EQ(lp.top[0].first, out[0].token_ids[t]) << t;
      EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob) << t;
      EXPECT_GE(lp.top[0].second, lp.top[1].second);
      EXPECT_NEAR(lp.logprob, forced[refs[i].prompt_ids.size() + t], 1e-4) << "token " << t;
    }
  }
  const auto plain = llm.generate({Prompt(refs[0].prompt_ids)}, greedy(4));
  EXPECT_TRUE(plain[0].logprobs.empty());  // not asked: none
}

// Prompt logprobs come from the prefill (in chunks here, and again for a prompt the prefix cache
// holds) and equal the teacher-forced ones of LLM::score.
TEST(StoriesReference, PromptLogprobsMatchTheTeacherForcedOnes) {
  const auto refs = stories_references();
  Config config = cpu_config();
  config.max_num_batched_tokens = 64;  // a 200-token prompt in 4 chunks
  LLM llm(stories_dir().string(), config);
  std::vector<int32_t> prompt = refs[1].prompt_ids;
  prompt.insert(prompt.end(), refs[1].output_ids.begin(), refs[1].output_ids.end());
  const std::vector<double> forced = llm.score(prompt);
  SamplingParams p = greedy(3);
  p.prompt_logprobs = 2;
  for (int round = 0; round < 2; ++round) {  // the second: the prompt's blocks are cached
    const RequestOutput out = llm.generate({Prompt(prompt)}, p)[0];
    ASSERT_EQ(out.prompt_logprobs.size(), prompt.size());
    EXPECT_FALSE(out.prompt_logprobs[0].has_value());
    for (size_t k = 1; k < prompt.size(); ++k) {
      ASSERT_TRUE(out.prompt_logprobs[k].has_value()) << k;
      EXPECT_NEAR(out.prompt_logprobs[k]->logprob, forced[k], 1e-4) << "round " << round << " token " << k;
      EXPECT_EQ(out.prompt_logprobs[k]->top.size(), 2u);
    }
    EXPECT_TRUE(out.logprobs.empty());
  }
  SamplingParams one = greedy(2);
  one.prompt_logprobs = 0;
  const RequestOutput single = llm.generate({Prompt(std::vector<int32_t>{1})}, one)[0];
  ASSERT_EQ(single.prompt_logprobs.size(), 1u);
  EXPECT_FALSE(single.prompt_logprobs[0].has_value());
}

TEST(StoriesReference, DeltaOutputsCarryTheNewTokensLogprobs) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  SamplingParams p = greedy(30);
  p.logprobs = 0;
  const auto whole = llm.generate({Prompt(refs[2].prompt_ids)}, p);
  const int64_t id = llm.add_request(refs[2].prompt_ids, p);
  std::vector<TokenLogprob> deltas;
  std::vector<int32_t> tokens;
  while (!llm.is_finished())
    for (const RequestOutput& o : llm.step(OutputKind::kDelta)) {
      ASSERT_EQ(o.request_id, id);
      ASSERT_EQ(o.logprobs.size(), o.token_ids.size());
      deltas.insert(deltas.end(), o.logprobs.begin(), o.logprobs.end());
      tokens.insert(tokens.end(), o.token_ids.begin(), o.token_ids.end());
    }
  ASSERT_EQ(tokens, whole[0].token_ids);
  ASSERT_EQ(deltas.size(), whole[0].logprobs.size());
  for (size_t t = 0; t < deltas.size(); ++t) {
    EXPECT_EQ(deltas[t].logprob, whole[0].logprobs[t].logprob) << t;
    EXPECT_TRUE(deltas[t].top.empty());
  }
}

}  // namespace
}  // namespace nanovllm::e2e
