// sample: greedy, temperature (Gumbel race) / top-k / top-p, the inverse-CDF contract of
// uniform_from_counter, determinism, and empirical distributions against softmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "core/error.h"
#include "core/random.h"

namespace nanovllm {
namespace {

using testing::host_tensor;
using testing::Rng;

int32_t sample_one(std::vector<float>& logits, const SamplingRow& row) {
  int32_t token = -1;
  CpuBackend().sample(host_tensor(logits, {1, int64_t(logits.size())}), {&row, 1}, &token);
  return token;
}

// Temperature alone, in double: argmax of logit / T - log(-log(u_i)) with u_i of the draw's key.
int32_t reference_race(const std::vector<float>& logits, const SamplingRow& row) {
  const uint64_t key = draw_key(row.seed, row.step);
  int32_t best = 0;
  double best_key = -INFINITY;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double u = (double(splitmix64(key + i) >> 41) + 0.5) / 8388608.0;
    const double k = double(logits[i]) / row.temperature - std::log(-std::log(u));
    if (k > best_key) {
      best_key = k;
      best = int32_t(i);
    }
  }
  return best;
}

// The documented contract in double. Temperature alone: the Gumbel race. Otherwise: order by
// logit (desc, lower index first), keep top_k, then the shortest prefix with cumulative
// probability >= top_p, then inverse CDF at u.
int32_t reference_sample(const std::vector<float>& logits, const SamplingRow& row) {
  if ((row.top_k <= 0 || size_t(row.top_k) >= logits.size()) && row.top_p >= 1.f)
    return reference_race(logits, row);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t n = row.top_k > 0 ? std::min(order.size(), size_t(row.top_k)) : order.size();
  const double mx = logits[order[0]];
  std::vector<double> p;
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    p.push_back(std::exp((logits[order[i]] - mx) / row.temperature));
    total += p.back();
  }
  size_t kept = n;
  double mass = total;
  if (row.top_p < 1.f) {
    double cum = 0;
    for (kept = 0; kept < n;) {
      cum += p[kept++];
      if (cum >= double(row.top_p) * total) break;
    }
    mass = cum;
  }
  const double target = double(uniform_from_counter(row.seed, row.step)) * mass;
  double cum = 0;
  for (size_t i = 0; i < kept; ++i) {
    cum += p[i];
    if (target < cum) return order[i];
  }
  return order[kept - 1];
}

TEST(Sample, GreedyIsArgmaxWithLowestIndexOnTies) {
  Rng rng(1);
  for (int V : {1, 7, 97, 5000}) {
    std::vector<float> logits = testing::random_floats(size_t(V), rng, -5.f, 5.f);
    SamplingRow greedy;
    const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(sample_one(logits, greedy), want);
    if (V >= 7) {
      logits[3] = logits[6] = 10.f;
      EXPECT_EQ(sample_one(logits, greedy), 3);
      SamplingRow top1{1.3f, 1, 1.f, 99, 5};
      EXPECT_EQ(sample_one(logits, top1), 3);
    }
  }
}

TEST(Sample, NearZeroTemperatureIsGreedy) {
  // Below kGreedyBelowTemperature the row is greedy: 1 / T is inf for subnormal T (every key of
  // the race inf or NaN), and at 1e-6 the keys are the logits x 1e6 anyway.
  Rng rng(3);
  std::vector<float> logits = testing::random_floats(5000, rng, -5.f, 5.f);
  logits[17] = logits[4000] = 6.f;  // a tie: the lower index wins, as greedy breaks ties
  for (float t : {1e-45f, 1e-38f, 1e-6f, 9.9e-6f})
    for (uint64_t seed : {1u, 2u, 3u}) {
      const SamplingRow row{t, -1, 1.f, seed, seed * 5};
      EXPECT_EQ(sample_one(logits, row), 17) << "temperature " << t << " seed " << seed;
      const SamplingRow top_p{t, -1, 0.9f, seed, seed * 5};
      EXPECT_EQ(sample_one(logits, top_p), 17) << "temperature " << t << " top_p 0.9";
    }
}

TEST(Sample, TopKOneEqualsGreedy) {
  Rng rng(2);
  std::vector<float> logits = testing::random_floats(1000, rng, -3.f, 3.f);
  const int32_t greedy = sample_one(logits, SamplingRow{});
  for (uint64_t step = 0; step < 50; ++step)
    EXPECT_EQ(sample_one(logits, SamplingRow{2.f, 1, 0.9f, 7, step}), greedy);
}

TEST(Sample, FollowsTheInverseCdfContract) {
  Rng rng(3);
  const SamplingRow settings[] = {{1.f, -1, 1.f, 1, 0},  {0.6f, 0, 1.f, 6, 0}, {0.7f, 5, 1.f, 2, 0},
                                  {1.2f, -1, 0.9f, 3, 0}, {0.8f, 40, 0.5f, 4, 0},
                                  {1.f, 0, 0.95f, 5, 0}};
  for (int V : {7, 97, 5000}) {
    // Flat-ish logits make the top-p walk visit thousands of tokens for V = 5000.
    std::vector<float> logits = testing::random_floats(size_t(V), rng, -1.f, 1.f);
    for (SamplingRow row : settings)
      for (uint64_t step = 0; step < 40; ++step) {
        row.step = step;
        ASSERT_EQ(sample_one(logits, row), reference_sample(logits, row))
            << "V=" << V << " k=" << row.top_k << " p=" << row.top_p << " step=" << step;
      }
  }
}

TEST(Sample, DeterministicPerSeedAndStepWhateverTheBatch) {
  Rng rng(4);
  const int64_t S = 5, V = 300;
  std::vector<float> logits = testing::random_floats(size_t(S * V), rng, -2.f, 2.f);
  std::vector<SamplingRow> rows;
  for (int64_t r = 0; r < S; ++r) rows.push_back(SamplingRow{1.f, -1, 0.95f, uint64_t(r), 9});
  std::vector<int32_t> batch(S), again(S);
  CpuBackend be;
  be.sample(host_tensor(logits, {S, V}), rows, batch.data());
  be.sample(host_tensor(logits, {S, V}), rows, again.data());
  EXPECT_EQ(batch, again);
  for (int64_t r = 0; r < S; ++r) {
    std::vector<float> one(logits.begin() + r * V, logits.begin() + (r + 1) * V);
    EXPECT_EQ(sample_one(one, rows[size_t(r)]), batch[size_t(r)]);
  }
  // Different steps of one seed do not all give the same token.
  std::set<int32_t> seen;
  std::vector<float> one(logits.begin(), logits.begin() + V);
  for (uint64_t step = 0; step < 50; ++step) seen.insert(sample_one(one, SamplingRow{1.f, -1, 1.f, 3, step}));
  EXPECT_GT(seen.size(), 5u);
}

// The race in float without skipping any entry's noise: what the skip must not change.
int32_t race_without_skipping(const std::vector<float>& logits, const SamplingRow& row) {
  const uint64_t key = draw_key(row.seed, row.step);
  const float inv_t = 1.f / row.temperature;
  int32_t best = 0;
  float best_key = -INFINITY;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float k = std::fma(logits[i], inv_t, gumbel_from_key(key, uint64_t(i)));
    if (k > best_key) {
      best_key = k;
      best = int32_t(i);
    }
  }
  return best;
}

TEST(Sample, GumbelNoiseIsFiniteAndUnderItsBound) {
  const uint32_t top = (1u << 23) - 1;
  EXPECT_TRUE(std::isfinite(gumbel_from_bits(0)));
  EXPECT_NEAR(gumbel_from_bits(0), -2.81, 0.01);
  EXPECT_TRUE(std::isfinite(gumbel_from_bits(top)));
  EXPECT_NEAR(gumbel_from_bits(top), 16.64, 0.01);
  EXPECT_LT(gumbel_from_bits(top), kGumbelUpperBound);
  for (uint32_t b = top - 4096; b < top; ++b)
    ASSERT_LT(gumbel_from_bits(b), gumbel_from_bits(b + 1)) << b;  // distinct u up to the top
}

TEST(Sample, GumbelBucketCeilingsBoundEveryNoiseOfTheirBucket) {
  for (uint32_t bucket = 0; bucket < uint32_t(kGumbelBuckets); ++bucket) {
    const uint32_t first = bucket << (23 - kGumbelBucketBits);
    const uint32_t end = (bucket + 1) << (23 - kGumbelBucketBits);
    float highest = -INFINITY;
    for (uint32_t b = first; b < end; ++b) {
      ASSERT_EQ(gumbel_bucket(b), bucket);
      highest = std::max(highest, gumbel_from_bits(b));
    }
    const float ceiling = gumbel_bucket_ceiling(bucket);
    ASSERT_GE(ceiling, highest) << "bucket " << bucket;
    ASSERT_LT(ceiling, highest + 0.01f) << "bucket " << bucket << ": too loose to skip anything";
  }
  EXPECT_LT(gumbel_bucket_ceiling(kGumbelBuckets - 2), 5.6f);  // all but the top bucket are low
}

TEST(Sample, RaceSkipsOnlyEntriesThatCannotWin) {
  Rng rng(8);
  for (float spread : {1.f, 10.f, 60.f})
    for (float temperature : {0.3f, 1.f}) {
      std::vector<float> logits = testing::random_floats(4000, rng, -spread, spread);
      logits[17] = -INFINITY;
      for (uint64_t step = 0; step < 60; ++step) {
        const SamplingRow row{temperature, -1, 1.f, 5, step};
        ASSERT_EQ(sample_one(logits, row), race_without_skipping(logits, row))
            << "spread " << spread << " T " << temperature << " step " << step;
      }
    }
  // Qwen's vocabulary with flat logits (an untrained model's): most entries skip by their bucket.
  std::vector<float> flat = testing::random_floats(151936, rng, -1.f, 1.f);
  for (uint64_t step = 0; step < 6; ++step) {
    const SamplingRow row{0.6f, -1, 1.f, 11, step};
    ASSERT_EQ(sample_one(flat, row), race_without_skipping(flat, row)) << "step " << step;
  }
}

// Pearson chi-square of counts against probabilities (over tokens with p > 0).
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  double chi = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double e = p[i] * n;
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

std::vector<int> histogram(std::vector<float>& logits, SamplingRow row, int n) {
  std::vector<int> counts(logits.size(), 0);
  for (int s = 0; s < n; ++s) {
    row.step = uint64_t(s);
    ++counts[size_t(sample_one(logits, row))];
  }
  return counts;
}

TEST(Sample, EmpiricalDistributionMatchesSoftmax) {
  std::vector<float> logits = {0.3f, -1.2f, 1.5f, 0.9f, -0.4f, 0.f};
  const float temperature = 0.8f;
  std::vector<double> p(logits.size());
  double z = 0;
  for (size_t i = 0; i < p.size(); ++i) z += p[i] = std::exp(logits[i] / temperature);
  for (double& x : p) x /= z;
  const int n = 20000;
  // 5 degrees of freedom: P(chi2 > 25) < 2e-4.
  EXPECT_LT(chi_square(histogram(logits, SamplingRow{temperature, -1, 1.f, 42, 0}, n), p, n), 25.0);

  // top_k = 3 keeps tokens 2, 3, 0 renormalized.
  std::vector<double> pk(p.size(), 0.0);
  const double top3 = p[2] + p[3] + p[0];
  for (int i : {2, 3, 0}) pk[size_t(i)] = p[size_t(i)] / top3;
  EXPECT_LT(chi_square(histogram(logits, SamplingRow{temperature, 3, 1.f, 43, 0}, n), pk, n), 16.0);
}

TEST(Sample, TopPKeepsTheSmallestSetReachingP) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (order shuffled in the vocabulary).
  std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  struct Want {
    float top_p;
    std::set<int32_t> kept;
  };
  for (const Want& w : {Want{0.4f, {1}}, Want{0.75f, {1, 3}}, Want{0.9f, {1, 3, 0}},
                        Want{0.99f, {1, 3, 0, 2}}}) {
    std::vector<int> counts = histogram(logits, SamplingRow{1.f, -1, w.top_p, 5, 0}, 4000);
    std::set<int32_t> seen;
    for (int32_t i = 0; i < 4; ++i)
      if (counts[size_t(i)]) seen.insert(i);
    EXPECT_EQ(seen, w.kept) << "top_p " << w.top_p;
  }
}

TEST(Sample, RejectsBadInput) {
  std::vector<float> logits = {0.f, 1.f, NAN};
  int32_t token;
  SamplingRow row;
  CpuBackend be;
  EXPECT_THROW(be.sample(host_tensor(logits, {1, 3}), {&row, 1}, &token), Error);
  logits[2] = 2.f;
  EXPECT_NO_THROW(be.sample(host_tensor(logits, {1, 3}), {&row, 1}, &token));
  EXPECT_EQ(token, 2);
  row.top_p = 0.f;
  EXPECT_THROW(be.sample(host_tensor(logits, {1, 3}), {&row, 1}, &token), Error);
  row = SamplingRow{-1.f, -1, 1.f, 0, 0};
  EXPECT_THROW(be.sample(host_tensor(logits, {1, 3}), {&row, 1}, &token), Error);
  std::vector<SamplingRow> two(2);
  EXPECT_THROW(be.sample(host_tensor(logits, {1, 3}), two, &token), Error);
}

}  // namespace
}  // namespace nanovllm
