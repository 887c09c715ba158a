// Seeded sampling is reproducible whatever else is in the batch; stop strings and stop token ids
// end generation with finish_reason "stop".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "e2e/e2e_util.h"

namespace nanovllm::e2e {
namespace {

SamplingParams seeded(uint64_t seed, int32_t max_tokens = 40) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.seed = seed;
  p.ignore_eos = true;
  p.max_tokens = max_tokens;
  return p;
}

TEST(SeededSampling, ReproducibleAcrossRunsAndBatchCompositions) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  const Prompt target(refs[2].prompt_ids);
  const auto alone1 = llm.generate({target}, seeded(1234));
  const auto alone2 = llm.generate({target}, seeded(1234));
  ASSERT_EQ(alone1[0].token_ids.size(), 40u);
  EXPECT_EQ(alone1[0].token_ids, alone2[0].token_ids);

  // The same request in the middle of a batch of other prompts, seeds and temperatures.
  std::vector<Prompt> prompts{Prompt(refs[0].prompt_ids), Prompt(refs[4].prompt_ids), target,
                              Prompt(refs[6].prompt_ids), target};
  std::vector<SamplingParams> params{seeded(7, 60), greedy(13), seeded(1234), seeded(99, 5),
                                     seeded(1234)};
  const auto batch = llm.generate(prompts, params);
  EXPECT_EQ(batch[2].token_ids, alone1[0].token_ids);
  EXPECT_EQ(batch[4].token_ids, alone1[0].token_ids);
  EXPECT_EQ(batch[1].token_ids, std::vector<int32_t>(refs[4].output_ids.begin(),
                                                     refs[4].output_ids.begin() + 13));

  // A fresh engine gives the same seeded tokens too.
  LLM other(stories_dir().string(), cpu_config());
  EXPECT_EQ(other.generate({target}, seeded(1234))[0].token_ids, alone1[0].token_ids);
}

TEST(SeededSampling, DifferentSeedsSampleDifferentTokens) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  std::set<std::vector<int32_t>> distinct;
  for (uint64_t seed = 1; seed <= 6; ++seed)
    distinct.insert(llm.generate({Prompt(refs[0].prompt_ids)}, seeded(seed))[0].token_ids);
  EXPECT_GE(distinct.size(), 5u);  // 40 tokens at temperature 0.8: collisions are implausible
  // And temperature 0.8 is not greedy.
  const std::vector<int32_t> greedy40(refs[1].output_ids.begin(), refs[1].output_ids.begin() + 40);
  EXPECT_EQ(distinct.count(greedy40), 0u);
}

TEST(StopConditions, StopStringEndsGenerationAndIsNotReturned) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  const auto& ref = refs[1];  // "Zoo", 197 tokens: " was a little girl named Lily. She loved..."
  struct Case {
    std::vector<std::string> stop;
    std::string expected_text;
  };
  const std::string& full = ref.completion_text;
  const std::vector<Case> cases{
      {{"Lily"}, full.substr(0, full.find("Lily"))},
      {{"park", "named Li"}, full.substr(0, full.find("named Li"))},  // spans tokens; earliest wins
      {{"red ball."}, full.substr(0, full.find("red ball."))},
  };
  for (const Case& c : cases) {
    SamplingParams p = greedy(int32_t(ref.output_ids.size()));
    p.stop = c.stop;
    const auto out = llm.generate({Prompt(ref.prompt_ids)}, p)[0];
    EXPECT_EQ(out.finish_reason, "stop") << c.stop[0];
    EXPECT_TRUE(out.finished);
    EXPECT_EQ(out.text, c.expected_text) << c.stop[0];
    for (const std::string& s : c.stop) EXPECT_EQ(out.text.find(s), std::string::npos) << s;
    // Generation really ended there: the tokens are a short prefix of the reference.
    ASSERT_LT(out.token_ids.size(), ref.output_ids.size());
    EXPECT_EQ(out.token_ids,
              std::vector<int32_t>(ref.output_ids.begin(), ref.output_ids.begin() + out.token_ids.size()));
    EXPECT_GE(llm.decode(out.token_ids).size(), c.expected_text.size());
  }
}

TEST(StopConditions, StopTokenIdEndsGenerationAtItsFirstOccurrence) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  const auto& ref = refs[3];  // "Once upon a time", 196 tokens
  const int32_t stop_id = ref.output_ids[30];
  const size_t first = size_t(std::find(ref.output_ids.begin(), ref.output_ids.end(), stop_id) -
                              ref.output_ids.begin());
  SamplingParams p = greedy(int32_t(ref.output_ids.size()));
  p.stop_token_ids = {stop_id};
  const auto out = llm.generate({Prompt(ref.prompt_ids)}, p)[0];
  EXPECT_EQ(out.finish_reason, "stop");
  EXPECT_EQ(out.token_ids,
            std::vector<int32_t>(ref.output_ids.begin(), ref.output_ids.begin() + first + 1));
  // Without the stop id the same request runs to max_tokens.
  const auto full = llm.generate({Prompt(ref.prompt_ids)}, greedy(40))[0];
  EXPECT_EQ(full.finish_reason, "length");
  EXPECT_EQ(full.token_ids.size(), 40u);
}

TEST(StopConditions, EosStopsUnlessIgnored) {
  // stories260K ends stories with BOS, never EOS (2), so a copy of it declares a token that the
  // reference output holds as its eos (config.json and generation_config.json).
  const auto refs = stories_references();
  const auto& ref = refs[2];  // "Once upon a time", 56 tokens
  const int32_t eos = ref.output_ids[20];
  const size_t first = size_t(std::find(ref.output_ids.begin(), ref.output_ids.end(), eos) -
                              ref.output_ids.begin());
  TempDir dir("eos");
  copy_folder(stories_dir(), dir.path());
  for (const char* name : {"config.json", "generation_config.json"}) {
    nlohmann::json j = read_json(dir.path() / name);
    j["eos_token_id"] = eos;
    write_json(dir.path() / name, j);
  }
  LLM llm(dir.path().string(), cpu_config());
  SamplingParams p = greedy(int32_t(ref.output_ids.size()));
  p.ignore_eos = false;
  const auto stopped = llm.generate({Prompt(ref.prompt_ids)}, p)[0];
  EXPECT_EQ(stopped.finish_reason, "stop");
  EXPECT_EQ(stopped.token_ids,
            std::vector<int32_t>(ref.output_ids.begin(), ref.output_ids.begin() + first + 1));
  p.ignore_eos = true;
  const auto ignored = llm.generate({Prompt(ref.prompt_ids)}, p)[0];
  EXPECT_EQ(ignored.finish_reason, "length");
  EXPECT_EQ(ignored.token_ids, ref.output_ids);
}

}  // namespace
}  // namespace nanovllm::e2e
