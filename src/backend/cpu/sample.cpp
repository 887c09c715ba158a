#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"
#include "core/random.h"

namespace nanovllm::cpu {

namespace {

// Lowest index of the largest logit.
int32_t argmax(const float* logits, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

// Token order of the sampler: larger logit first, ties by lower index. Temperature does not
// change the order, so sorting raw logits keeps top_k = 1 identical to greedy.
struct Descending {
  const float* logits;
  bool operator()(int32_t a, int32_t b) const {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  }
};

// The candidates in `order` sorted lazily: prefix(k) guarantees order[0, k) are the k best in
// order, sorting only as far as the walk needs (the whole vocabulary is rarely visited).
class SortedPrefix {
 public:
  SortedPrefix(std::vector<int32_t>& order, int64_t n, Descending cmp)
      : order_(order), n_(n), cmp_(cmp) {}
  int32_t at(int64_t k) {
    if (k >= sorted_) {
      const int64_t target = std::min(n_, std::max<int64_t>(2 * sorted_, std::max<int64_t>(k + 1, 64)));
      std::partial_sort(order_.begin() + sorted_, order_.begin() + target, order_.begin() + n_,
                        cmp_);
      sorted_ = target;
    }
    return order_[size_t(k)];
  }

 private:
  std::vector<int32_t>& order_;
  int64_t n_;
  Descending cmp_;
  int64_t sorted_ = 0;
};

// Temperature alone: the Gumbel-max race, argmax of logit / T + gumbel(index) (lowest index
// among equal keys); one pass, no sort, and the GPU's rule exactly.
int32_t gumbel_race(const float* logits, int64_t V, const SamplingRow& row) {
  const uint64_t key = draw_key(row.seed, row.step);
  const float inv_t = 1.f / row.temperature;
  float ceiling[kGumbelBuckets];
  for (int b = 0; b < kGumbelBuckets; ++b) ceiling[b] = gumbel_bucket_ceiling(uint32_t(b));
  int64_t best = 0;
  float best_key = -INFINITY;
  for (int64_t i = 0; i < V; ++i) {
    // Entries that cannot win skip the hash (any noise) or the logarithms (their bucket's noise).
    if (std::fma(logits[i], inv_t, kGumbelUpperBound) < best_key) continue;
    const uint32_t bits = gumbel_bits(key, uint64_t(i));
    if (std::fma(logits[i], inv_t, ceiling[gumbel_bucket(bits)]) < best_key) continue;
    const float k = std::fma(logits[i], inv_t, gumbel_from_bits(bits));
    if (k > best_key) {
      best_key = k;
      best = i;
    }
  }
  return int32_t(best);
}

// Temperature with top-k or top-p: top-k, top-p, then the inverse CDF of
// uniform_from_counter(seed, step) over the kept tokens in descending-probability order. order is
// scratch (sized to V here).
int32_t sample_row(const float* logits, int64_t V, const SamplingRow& row,
                   std::vector<int32_t>& order) {
  if (samples_greedily(row)) return argmax(logits, V);
  if (samples_by_gumbel_race(row.temperature, row.top_k, row.top_p, V)) return gumbel_race(logits, V, row);
  const Descending cmp{logits};
  order.resize(size_t(V));  // allocated once per thread, only by rows that sort
  std::iota(order.begin(), order.end(), 0);
  int64_t n = V;
  if (row.top_k > 0 && row.top_k < V) {
    n = row.top_k;
    std::nth_element(order.begin(), order.begin() + (n - 1), order.end(), cmp);
  }
  const float max_logit = logits[argmax(logits, V)];
  const double inv_t = 1.0 / double(row.temperature);
  auto weight = [&](int32_t i) { return std::exp(double(logits[i] - max_logit) * inv_t); };
  double total = 0.0;
  for (int64_t c = 0; c < n; ++c) total += weight(order[size_t(c)]);

  SortedPrefix sorted(order, n, cmp);
  int64_t kept = n;
  double kept_mass = total;
  if (row.top_p < 1.f) {
    const double needed = double(row.top_p) * total;
    double cum = 0.0;
    kept = 0;
    while (kept < n) {
      cum += weight(sorted.at(kept));
      ++kept;
      if (cum >= needed) break;
    }
    kept_mass = cum;
  }
  const double target = double(uniform_from_counter(row.seed, row.step)) * kept_mass;
  double cum = 0.0;
  for (int64_t c = 0; c < kept; ++c) {
    const int32_t token = sorted.at(c);
    cum += weight(token);
    if (target < cum) return token;
  }
  return sorted.at(kept - 1);
}

}  // namespace

// Picks one token per logits row (F32 [S, V]) into out_token_ids[S].
void sample(const Tensor& logits, std::span<const SamplingRow> rows, int32_t* out_token_ids) {
  check_tensor(logits, "sample", "logits", DType::F32, 2);
  const int64_t S = logits.dim(0), V = logits.dim(1);
  NANOVLLM_CHECK(int64_t(rows.size()) == S, "sample: ", rows.size(), " sampling rows for ", S,
                 " logits rows");
  NANOVLLM_CHECK(V > 0 || S == 0, "sample: logits have an empty vocabulary");
  NANOVLLM_CHECK(out_token_ids || S == 0, "sample: out_token_ids is null");
  for (int64_t r = 0; r < S; ++r) {
    const SamplingRow& row = rows[size_t(r)];
    NANOVLLM_CHECK(row.temperature >= 0.f && std::isfinite(row.temperature), "sample: row ", r,
                   " has temperature ", row.temperature, ", expected a finite value >= 0");
    NANOVLLM_CHECK(row.top_p > 0.f && row.top_p <= 1.f, "sample: row ", r, " has top_p ",
                   row.top_p, ", expected (0, 1]");
    const float* x = logits.ptr<float>() + r * V;
    for (int64_t i = 0; i < V; ++i)
      NANOVLLM_CHECK(!std::isnan(x[i]) && x[i] != INFINITY, "sample: logits[", r, ", ", i,
                     "] = ", x[i], ", expected a number below +inf");
  }
#pragma omp parallel if (S > 1)
  {
    std::vector<int32_t> order;  // [V] per thread
#pragma omp for schedule(dynamic, 1)
    for (int64_t r = 0; r < S; ++r) {
      const SamplingRow& row = rows[size_t(r)];
      out_token_ids[r] = sample_row(logits.ptr<float>() + r * V, V, row, order);
    }
  }
}

}  // namespace nanovllm::cpu
