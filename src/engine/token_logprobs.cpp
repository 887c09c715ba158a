#include "engine/token_logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace nanovllm {

double log_normalizer(std::span<const float> row) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : row) mx = std::max(mx, double(v));
  double sum = 0;
  for (float v : row) sum += std::exp(double(v) - mx);
  return mx + std::log(sum);
}

void log_softmax_into(std::span<const float> row, float* out) {
  const double log_z = log_normalizer(row);
  for (size_t i = 0; i < row.size(); ++i) out[i] = float(double(row[i]) - log_z);
}

TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t top_n) {
  const int64_t V = int64_t(logits.size());
  NANOVLLM_CHECK(token >= 0 && token < V, "logprobs: token ", token, " outside the vocabulary [0, ", V, ")");
  const double log_z = log_normalizer(logits);
  TokenLogprob out;
  out.logprob = float(double(logits[size_t(token)]) - log_z);
  const int64_t n = std::min<int64_t>(top_n, V);
  if (n > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(V));
    std::iota(ids.begin(), ids.end(), 0);
    auto more_likely = [&](int32_t a, int32_t b) {
      return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    };
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), more_likely);
    for (int64_t i = 0; i < n; ++i)
      out.top.emplace_back(ids[size_t(i)], float(double(logits[size_t(ids[size_t(i)])]) - log_z));
  }
  return out;
}

}  // namespace nanovllm
