#include "engine/kv_eval.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nanovllm {

void KvEvalAccumulator::add_window(std::span<const int32_t> ids, std::span<const float> ref,
                                   std::span<const float> cand, int64_t vocab) {
  const int64_t n = int64_t(ids.size());
  NANOVLLM_CHECK(int64_t(ref.size()) == n * vocab && int64_t(cand.size()) == n * vocab,
                 "eval: logprob rows do not match the window");
  for (int64_t p = 0; p + 1 < n; ++p) {
    const float* r = &ref[size_t(p * vocab)];
    const float* c = &cand[size_t(p * vocab)];
    double kl = 0;
    int64_t arg_r = 0, arg_c = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      const double pr = std::exp(double(r[v]));
      kl += pr * (double(r[v]) - double(c[v]));
      if (r[v] > r[arg_r]) arg_r = v;
      if (c[v] > c[arg_c]) arg_c = v;
    }
    kl = std::max(kl, 0.0);  // rounding can dip a hair below zero
    kl_sum_ += kl;
    kl_max_ = std::max(kl_max_, kl);
    agree_ += arg_r == arg_c;
    nll_ref_ -= r[ids[p + 1]];
    nll_ -= c[ids[p + 1]];
    ++tokens_;
  }
}

KvEvalResult KvEvalAccumulator::result() const {
  KvEvalResult out;
  out.tokens = tokens_;
  if (tokens_ == 0) return out;
  out.ppl_ref = std::exp(nll_ref_ / double(tokens_));
  out.ppl = std::exp(nll_ / double(tokens_));
  out.kl_mean = kl_sum_ / double(tokens_);
  out.kl_max = kl_max_;
  out.top1_agreement = double(agree_) / double(tokens_);
  return out;
}

KvEvalResult evaluate_kv(LLM& reference, LLM& candidate, const std::vector<int32_t>& ids,
                         int32_t window) {
  NANOVLLM_CHECK(window >= 2, "eval: window must hold at least 2 tokens");
  NANOVLLM_CHECK(ids.size() >= 2, "eval: the text must have at least 2 tokens");
  KvEvalAccumulator acc;
  for (size_t start = 0; start + 1 < ids.size(); start += size_t(window)) {
    const size_t end = std::min(ids.size(), start + size_t(window));
    std::vector<int32_t> w(ids.begin() + long(start), ids.begin() + long(end));
    if (w.size() < 2) break;
    const std::vector<float> ref = reference.prompt_logprobs(w);
    acc.add_window(w, ref, candidate.prompt_logprobs(w), int64_t(ref.size() / w.size()));
  }
  return acc.result();
}

}  // namespace nanovllm
