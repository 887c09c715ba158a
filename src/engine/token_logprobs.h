#pragma once
// Log-probabilities of sampled tokens under the model's raw next-token distribution: the
// log-softmax of the logits before temperature, top-k and top-p (what vLLM reports by default).
#include <cstdint>
#include <span>

#include "nanovllm/llm.h"

namespace nanovllm {

// log(sum(exp(row))), in double: the normalizer of a row's log-softmax.
double log_normalizer(std::span<const float> row);
// out[i] = row[i] - log_normalizer(row): the log-softmax of one row.
void log_softmax_into(std::span<const float> row, float* out);
// logits: one row [V] (float32). top_n most likely tokens with theirs, most likely first (ties:
// the lower id first).
TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t top_n);

}  // namespace nanovllm
