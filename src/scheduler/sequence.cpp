#include "scheduler/sequence.h"

#include <algorithm>

#include "core/error.h"

namespace nanovllm {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::NONE: return "";
    case FinishReason::STOP:
    case FinishReason::STOP_STRING: return "stop";
    case FinishReason::LENGTH: return "length";
    case FinishReason::ABORT: return "abort";
  }
  return "";
}

Sequence::Sequence(int64_t id_, std::vector<int32_t> prompt_token_ids, SamplingParams params_)
    : id(id_), token_ids(std::move(prompt_token_ids)), params(std::move(params_)) {
  NANOVLLM_CHECK(!token_ids.empty(), "request ", id, ": the prompt has no tokens (expected at least one)");
  num_prompt_tokens = int32_t(token_ids.size());
}

std::span<const int32_t> Sequence::prompt_token_ids() const {
  return std::span<const int32_t>(token_ids).first(size_t(num_prompt_tokens));
}

std::span<const int32_t> Sequence::completion_token_ids() const {
  return std::span<const int32_t>(token_ids).subspan(size_t(num_prompt_tokens));
}

int32_t Sequence::num_blocks(int32_t block_size) const {
  return (num_tokens() + block_size - 1) / block_size;
}

std::span<const int32_t> Sequence::block(int32_t i, int32_t block_size) const {
  NANOVLLM_CHECK(i >= 0 && i < num_blocks(block_size), "request ", id, ": block ", i,
                 " out of range [0, ", num_blocks(block_size), ")");
  const int32_t begin = i * block_size;
  const int32_t end = std::min(begin + block_size, num_tokens());
  return std::span<const int32_t>(token_ids).subspan(size_t(begin), size_t(end - begin));
}

}  // namespace nanovllm
