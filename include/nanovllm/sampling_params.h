#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nanovllm {

// Per-request sampling, nano-vllm's fields plus the usual vLLM ones.
struct SamplingParams {
  static constexpr int32_t kMaxLogprobs = 20;  // as OpenAI's API
  float temperature = 1.0f;  // 0 means greedy
  int32_t top_k = -1;        // -1 or 0: all tokens
  float top_p = 1.0f;        // (0, 1]
  std::optional<uint64_t> seed;  // unset: derived from the request id (still reproducible)
  int32_t max_tokens = 64;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings; matched text is not returned
  // -1: none; 0: each sampled token's log-probability; N (<= 20): also the N most likely tokens'
  // (vLLM's `logprobs`; RequestOutput::logprobs)
  int32_t logprobs = -1;
  // The same for each prompt token given those before it (vLLM's `prompt_logprobs`; computed in
  // the prefill, so such a request does not take prompt blocks from the prefix cache).
  int32_t prompt_logprobs = -1;

  // Throws nanovllm::Error naming the field and allowed range.
  void validate() const;
};

}  // namespace nanovllm
