#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nanovllm {

// Per-request sampling, nano-vllm's fields plus the usual vLLM ones.
struct SamplingParams {
  float temperature = 1.0f;  // 0 means greedy
  int32_t top_k = -1;        // -1 or 0: all tokens
  float top_p = 1.0f;        // (0, 1]
  std::optional<uint64_t> seed;  // unset: derived from the request id (still reproducible)
  int32_t max_tokens = 64;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings; matched text is not returned

  // Throws nanovllm::Error naming the field and allowed range.
  void validate() const;
};

}  // namespace nanovllm
