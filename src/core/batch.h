#pragma once
// What one forward step computes, built by the ModelRunner and passed explicitly (no global
// context). BatchInput is the host-side description; AttentionMeta is the view attention kernels
// read, whose pointers live on the backend's device.
#include <cstdint>
#include <vector>

namespace nanovllm {

struct BatchInput {
  // Per token of the step (T = total new tokens over all sequences):
  std::vector<int32_t> token_ids;     // [T]
  std::vector<int32_t> positions;     // [T] absolute position in its sequence
  std::vector<int64_t> slot_mapping;  // [T] cache slot the token's K/V go to; -1 = skip
  // Per sequence (B sequences, in batch order):
  std::vector<int32_t> cu_seqlens_q;  // [B + 1] prefix sums of new tokens per sequence
  std::vector<int32_t> context_lens;  // [B] tokens in the cache once this step's are stored
  std::vector<int32_t> block_tables;  // [B, max_blocks_per_seq] block ids, padded with -1
  int32_t max_blocks_per_seq = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  // Every context at least 80% of the longest (see AttentionMeta::even_contexts); set from the
  // real sequences, so padding rows added for a graph do not change it.
  bool even_contexts = false;
  // Rows of the step's hidden states whose logits are wanted (usually each sequence's last).
  std::vector<int32_t> logits_indices;  // [S]

  int32_t num_tokens() const { return int32_t(token_ids.size()); }
  int32_t num_seqs() const { return int32_t(context_lens.size()); }
  bool is_decode() const { return max_query_len == 1; }
};

// Query token j of sequence i sits at position context_lens[i] - q_len_i + j and attends to cache
// positions [0, that position] (causal); all of the step's K/V are stored before attention runs.
struct AttentionMeta {
  const int32_t* cu_seqlens_q = nullptr;  // [B + 1]
  const int32_t* context_lens = nullptr;  // [B]
  const int32_t* block_tables = nullptr;  // [B, max_blocks_per_seq]
  int32_t num_seqs = 0;
  int32_t max_blocks_per_seq = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  // The batch's contexts are about equally long: a backend may then size its split-K for equal
  // work (CUDA decode: decode_attention_even_splits) rather than for a spread of lengths.
  bool even_contexts = false;
};

// Temperatures below this sample greedily (vLLM's _SAMPLING_EPS): 1 / T overflows to inf for
// subnormal T, and every key of the sampler with it.
inline constexpr float kGreedyBelowTemperature = 1e-5f;

// One row of sampling: parameters of the request that owns logits row r.
struct SamplingRow {
  float temperature = 0.f;  // < kGreedyBelowTemperature (0 included): greedy (argmax)
  int32_t top_k = -1;       // <= 0: off
  float top_p = 1.f;        // 1: off
  uint64_t seed = 0;        // per-request seed
  uint64_t step = 0;        // tokens generated so far; with seed, picks the random draw
};

inline bool samples_greedily(const SamplingRow& row) {
  return row.temperature < kGreedyBelowTemperature;
}

}  // namespace nanovllm
