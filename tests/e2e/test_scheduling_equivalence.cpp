// Scheduling must never change greedy outputs: prefix caching on/off, preemption under a tiny KV
// cache, and chunked prefill all give stories260K's reference tokens.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "e2e/e2e_util.h"

namespace nanovllm::e2e {
namespace {

// Prompts that share a long common prefix: a 200-step reference's prompt plus the first `cut`
// tokens of its output, whose greedy continuation must be the rest of that output.
struct FedBack {
  std::vector<int32_t> prompt;
  std::vector<int32_t> expected;  // the reference output after the cut
};

std::vector<FedBack> fed_back_prompts() {
  const auto refs = stories_references();
  std::vector<FedBack> out;
  for (size_t i = 1; i < refs.size(); i += 2) {  // the 200-step entries
    for (int32_t cut : {97, 120, 150}) {
      FedBack f;
      f.prompt = refs[i].prompt_ids;
      f.prompt.insert(f.prompt.end(), refs[i].output_ids.begin(), refs[i].output_ids.begin() + cut);
      f.expected.assign(refs[i].output_ids.begin() + cut, refs[i].output_ids.end());
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::vector<RequestOutput> run_fed_back(LLM& llm, const std::vector<FedBack>& cases) {
  std::vector<Prompt> prompts;
  std::vector<SamplingParams> params;
  for (const auto& c : cases) {
    prompts.emplace_back(c.prompt);
    params.push_back(greedy(int32_t(c.expected.size())));
  }
  return llm.generate(prompts, params);
}

TEST(SchedulingEquivalence, PrefixCachingOnAndOffGiveIdenticalOutputs) {
  const auto cases = fed_back_prompts();
  Config on = cpu_config();
  Config off = cpu_config();
  off.enable_prefix_caching = false;
  LLM llm_on(stories_dir().string(), on);
  LLM llm_off(stories_dir().string(), off);
  // First the longest-cut prompts alone (they fill the cache), then every prompt in one batch.
  const std::vector<FedBack> warm{cases[2], cases[5], cases[8], cases[11]};
  const auto warm_on = run_fed_back(llm_on, warm);
  const auto warm_off = run_fed_back(llm_off, warm);
  const auto all_on = run_fed_back(llm_on, cases);
  const auto all_off = run_fed_back(llm_off, cases);
  for (size_t i = 0; i < warm.size(); ++i) {
    EXPECT_EQ(warm_on[i].token_ids, warm[i].expected) << i;
    EXPECT_EQ(warm_off[i].token_ids, warm[i].expected) << i;
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(all_on[i].token_ids, cases[i].expected) << i;
    EXPECT_EQ(all_off[i].token_ids, all_on[i].token_ids) << i;
    EXPECT_EQ(all_off[i].text, all_on[i].text) << i;
  }
  // Prompts of 101..155 tokens share 6 full blocks per story at least.
  EXPECT_GE(llm_on.stats().cached_prompt_tokens, 4 * 6 * 16);
  EXPECT_EQ(llm_off.stats().cached_prompt_tokens, 0);
  EXPECT_LT(llm_on.stats().prompt_tokens, llm_off.stats().prompt_tokens);
}

TEST(SchedulingEquivalence, ResetPrefixCacheRecomputesPromptsWithTheSameOutputs) {
  const std::vector<FedBack> one{fed_back_prompts()[2]};  // alone, so it cannot hit itself
  LLM llm(stories_dir().string(), cpu_config());
  const auto first = run_fed_back(llm, one);
  llm.reset_stats();
  const auto cached = run_fed_back(llm, one);
  EXPECT_GT(llm.stats().cached_prompt_tokens, 0) << "the repeat must hit the prefix cache";

  ASSERT_TRUE(llm.reset_prefix_cache());
  llm.reset_stats();
  const auto recomputed = run_fed_back(llm, one);
  EXPECT_EQ(llm.stats().cached_prompt_tokens, 0);
  EXPECT_EQ(llm.stats().prompt_tokens, int64_t(one[0].prompt.size()));
  EXPECT_EQ(first[0].token_ids, one[0].expected);
  EXPECT_EQ(cached[0].token_ids, first[0].token_ids);
  EXPECT_EQ(recomputed[0].token_ids, first[0].token_ids);

  // With a request holding blocks the reset is refused and the cache kept.
  llm.add_request(Prompt(one[0].prompt), greedy(4));
  llm.step();
  EXPECT_FALSE(llm.reset_prefix_cache());
  while (!llm.is_finished()) llm.step();
  llm.reset_stats();
  run_fed_back(llm, one);
  EXPECT_GT(llm.stats().cached_prompt_tokens, 0) << "the refused reset must keep the cache";
  EXPECT_TRUE(llm.reset_prefix_cache());
}

TEST(SchedulingEquivalence, PreemptionUnderATinyKvCacheKeepsOutputs) {
  const auto refs = stories_references();
  Config c = cpu_config();
  c.kvcache_block_size = 16;
  c.num_kvcache_blocks = 20;  // one 200-token sequence needs 13 blocks: at most one runs alone
  LLM llm(stories_dir().string(), c);
  const auto out = llm.generate(id_prompts(refs), greedy_params(refs));
  EXPECT_GT(llm.stats().preemptions, 0);
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(out[i].token_ids, refs[i].output_ids) << i;
}

TEST(SchedulingEquivalence, PreemptionWithPrefixCachingAndChunkedPrefill) {
  const auto cases = fed_back_prompts();
  Config c = cpu_config();
  c.num_kvcache_blocks = 24;
  c.max_num_batched_tokens = 37;
  LLM llm(stories_dir().string(), c);
  const auto out = run_fed_back(llm, cases);
  EXPECT_GT(llm.stats().preemptions, 0);
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(out[i].token_ids, cases[i].expected) << i;
}

TEST(SchedulingEquivalence, ChunkedPrefillWithASmallBudgetKeepsOutputs) {
  const auto cases = fed_back_prompts();
  const auto refs = stories_references();
  Config c = cpu_config();
  c.max_num_batched_tokens = 7;  // a 101..155-token prompt takes 15..23 prefill chunks
  c.enable_prefix_caching = false;
  LLM llm(stories_dir().string(), c);
  const auto out = run_fed_back(llm, cases);
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(out[i].token_ids, cases[i].expected) << i;
  const auto ref_out = llm.generate(id_prompts(refs), greedy_params(refs));
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(ref_out[i].token_ids, refs[i].output_ids) << i;
}

}  // namespace
}  // namespace nanovllm::e2e
