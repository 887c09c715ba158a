#pragma once
// Teacher-forced comparison of two engines over the same tokens (a KV dtype against the model
// dtype): perplexity of each, KL(reference || candidate) of the next-token distributions and
// top-1 agreement. What `nanovllm eval` prints.
#include <cstdint>
#include <span>
#include <vector>

#include "nanovllm/llm.h"

namespace nanovllm {

struct KvEvalResult {
  double ppl_ref = 0, ppl = 0;
  double kl_mean = 0, kl_max = 0;
  double top1_agreement = 0;
  int64_t tokens = 0;  // predicted positions counted
};

// Accumulates over windows; logprobs are [n, V] rows from LLM::prompt_logprobs, where row p
// predicts token p + 1 of `ids`.
class KvEvalAccumulator {
 public:
  void add_window(std::span<const int32_t> ids, std::span<const float> ref_logprobs,
                  std::span<const float> logprobs, int64_t vocab);
  KvEvalResult result() const;

 private:
  double nll_ref_ = 0, nll_ = 0, kl_sum_ = 0, kl_max_ = 0;
  int64_t agree_ = 0, tokens_ = 0;
};

// Runs both engines over `ids` in windows of at most `window` tokens.
KvEvalResult evaluate_kv(LLM& reference, LLM& candidate, const std::vector<int32_t>& ids,
                         int32_t window);

}  // namespace nanovllm
