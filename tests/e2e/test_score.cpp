// score() and prompt_logprobs() on stories260K: consistent with each other, with greedy decoding
// (the reference's greedy tokens are the argmax at every generated position), and normalized.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "e2e/e2e_util.h"

namespace nanovllm::e2e {
namespace {

std::vector<int32_t> prompt_plus_output(const StoriesReference& ref) {
  std::vector<int32_t> ids = ref.prompt_ids;
  ids.insert(ids.end(), ref.output_ids.begin(), ref.output_ids.end());
  return ids;
}

TEST(Score, GreedyTokensAreTheArgmaxAndLogprobsAgree) {
  const auto refs = stories_references();
  LLM llm(stories_dir().string(), cpu_config());
  const int64_t vocab = 512;
  for (size_t r = 0; r < refs.size(); r += 3) {
    const auto ids = prompt_plus_output(refs[r]);
    const size_t n = ids.size();
    const std::vector<double> score = llm.score(ids);
    const std::vector<float> rows = llm.prompt_logprobs(ids);  // [n, vocab]
    ASSERT_EQ(score.size(), n);
    ASSERT_EQ(rows.size(), n * vocab);
    EXPECT_TRUE(std::isnan(score[0]));
    for (size_t pos = 0; pos < n; ++pos) {
      const float* row = &rows[pos * vocab];
      // Each row is a normalized log-distribution.
      double total = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        ASSERT_LE(row[v], 0.0f);
        total += std::exp(double(row[v]));
      }
      EXPECT_NEAR(total, 1.0, 1e-4) << pos;
      if (pos + 1 >= n) continue;
      EXPECT_LE(score[pos + 1], 0.0);
      EXPECT_NEAR(score[pos + 1], row[ids[pos + 1]], 1e-6) << pos;
      // Generated positions: the greedy token is the most likely one (margins >= 0.0035 in logits).
      if (pos + 1 >= refs[r].prompt_ids.size()) {
        const int64_t best = std::max_element(row, row + vocab) - row;
        EXPECT_EQ(best, ids[pos + 1]) << "reference " << r << " position " << pos;
      }
    }
  }
}

TEST(Score, IndependentOfChunkingAndOfEarlierRequests) {
  const auto refs = stories_references();
  const auto ids = prompt_plus_output(refs[1]);  // 201 tokens
  LLM big(stories_dir().string(), cpu_config());
  Config small_cfg = cpu_config();
  small_cfg.max_num_batched_tokens = 13;  // the teacher-forced pass runs in 16 chunks
  LLM small(stories_dir().string(), small_cfg);
  const auto a = big.score(ids);
  big.generate({Prompt(refs[0].prompt_ids)}, greedy(30));  // leaves the prefix cache warm
  const auto b = big.score(ids);
  const auto c = small.score(ids);
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(a[i], b[i]) << i;
    EXPECT_NEAR(a[i], c[i], 1e-5) << i;
  }
}

TEST(Score, RejectsBadInput) {
  LLM llm(stories_dir().string(), cpu_config());
  EXPECT_THROW(llm.score({}), Error);
  try {
    llm.score({1, 5, 512});
    FAIL() << "expected nanovllm::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("512"));
  }
}

}  // namespace
}  // namespace nanovllm::e2e
