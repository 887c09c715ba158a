#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "engine/token_logprobs.h"

namespace nanovllm {
namespace {

TEST(TokenLogprobs, LogSoftmaxOfTheRawLogitsAndTheMostLikelyFirst) {
  const std::vector<float> logits{1.f, 3.f, 2.f, 3.f, -40.f};
  const double z = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0) + std::exp(-40.0));
  const TokenLogprob lp = token_logprob(logits, 2, 3);
  EXPECT_NEAR(lp.logprob, 2.0 - z, 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);  // tie at 3.0: the lower id first
  EXPECT_EQ(lp.top[1].first, 3);
  EXPECT_EQ(lp.top[2].first, 2);
  EXPECT_NEAR(lp.top[0].second, 3.0 - z, 1e-6);
  EXPECT_NEAR(lp.top[2].second, lp.logprob, 1e-7);
  EXPECT_TRUE(token_logprob(logits, 0, 0).top.empty());
  const TokenLogprob all = token_logprob(logits, 4, 99);  // more than the vocabulary: all of it
  ASSERT_EQ(all.top.size(), logits.size());
  double mass = 0;
  for (const auto& [id, l] : all.top) mass += std::exp(double(l));
  EXPECT_NEAR(mass, 1.0, 1e-6);
  EXPECT_NEAR(all.logprob, -40.0 - z, 1e-4);
  EXPECT_THROW(token_logprob(logits, 5, 0), Error);
}

TEST(TokenLogprobs, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits{1000.f, 999.f, -1000.f};
  const TokenLogprob lp = token_logprob(logits, 0, 1);
  EXPECT_TRUE(std::isfinite(lp.logprob));
  EXPECT_NEAR(lp.logprob, -std::log1p(std::exp(-1.0)), 1e-5);
}

}  // namespace
}  // namespace nanovllm
