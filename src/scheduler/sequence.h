#pragma once
// One request as the scheduler sees it (nano-vllm's Sequence): its tokens, how many of them have
// K/V in the cache, and the cache blocks that hold them.
#include <cstdint>
#include <span>
#include <vector>

#include "nanovllm/sampling_params.h"

namespace nanovllm {

enum class SequenceStatus { WAITING, RUNNING, FINISHED };

enum class FinishReason {
  NONE,         // still running
  STOP,         // an eos id (unless ignore_eos) or one of SamplingParams::stop_token_ids
  STOP_STRING,  // a stop string, decided by the caller (Scheduler::finish)
  LENGTH,       // max_tokens, max_model_len or the KV cache's capacity
  ABORT,        // the caller gave up on it (Scheduler::finish)
};

// "stop", "length", "abort" or "" (NONE): the names the public API reports.
const char* finish_reason_name(FinishReason reason);

class Sequence {
 public:
  // Throws nanovllm::Error when the prompt is empty.
  Sequence(int64_t id, std::vector<int32_t> prompt_token_ids, SamplingParams params = {});

  int64_t id = 0;
  SequenceStatus status = SequenceStatus::WAITING;
  FinishReason finish_reason = FinishReason::NONE;
  std::vector<int32_t> token_ids;  // [num_tokens] prompt then generated tokens
  int32_t num_prompt_tokens = 0;
  // Tokens served from the prefix cache by the latest allocation (a multiple of the block size).
  int32_t num_cached_tokens = 0;
  // Tokens [0, num_computed_tokens) have their K/V in the cache (cached ones included).
  int32_t num_computed_tokens = 0;
  std::vector<int32_t> block_table;  // [num_blocks] cache block ids, in token order
  SamplingParams params;
  // Take no prefix-cache hits: every position is computed (teacher-forced scoring wants all logits).
  bool skip_prefix_cache = false;

  int32_t num_tokens() const { return int32_t(token_ids.size()); }
  int32_t num_completion_tokens() const { return num_tokens() - num_prompt_tokens; }
  int32_t last_token() const { return token_ids.back(); }
  std::span<const int32_t> prompt_token_ids() const;
  std::span<const int32_t> completion_token_ids() const;
  bool is_finished() const { return status == SequenceStatus::FINISHED; }

  // Blocks needed to hold every token: ceil(num_tokens / block_size).
  int32_t num_blocks(int32_t block_size) const;
  // Tokens of block i: [i * block_size, min((i + 1) * block_size, num_tokens)).
  std::span<const int32_t> block(int32_t i, int32_t block_size) const;

  void append_token(int32_t token_id) { token_ids.push_back(token_id); }
};

}  // namespace nanovllm
