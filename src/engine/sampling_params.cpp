#include "nanovllm/sampling_params.h"

#include <cmath>

#include "core/error.h"

namespace nanovllm {

void SamplingParams::validate() const {
  NANOVLLM_CHECK(std::isfinite(temperature) && temperature >= 0, "sampling: temperature = ",
                 temperature, "; expected >= 0 (0 is greedy)");
  NANOVLLM_CHECK(top_k >= -1, "sampling: top_k = ", top_k, "; expected -1 or 0 (off) or >= 1");
  NANOVLLM_CHECK(top_p > 0 && top_p <= 1, "sampling: top_p = ", top_p, "; expected (0, 1]");
  NANOVLLM_CHECK(max_tokens >= 1, "sampling: max_tokens = ", max_tokens, "; expected >= 1");
  NANOVLLM_CHECK(logprobs >= -1 && logprobs <= kMaxLogprobs, "sampling: logprobs = ", logprobs,
                 "; expected -1 (none), 0 (the sampled token's) or up to ", kMaxLogprobs);
  NANOVLLM_CHECK(prompt_logprobs >= -1 && prompt_logprobs <= kMaxLogprobs, "sampling: prompt_logprobs = ",
                 prompt_logprobs, "; expected -1 (none), 0 (each prompt token's) or up to ", kMaxLogprobs);
  for (const std::string& s : stop)
    NANOVLLM_CHECK(!s.empty(), "sampling: stop strings must not be empty");
}

}  // namespace nanovllm
