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

}  // namespace
}  // namespace nanovllm::e2e
