#pragma once
// Continuous batching (nano-vllm's Scheduler) with chunked prefill and preemption by recompute.
//
// Step protocol, one thread: batch = schedule(); run the model on it; postprocess(batch, sampled);
// then finish() for stop strings or aborts. Nothing may be added or finished between schedule()
// and postprocess(): the batch points into sequences the scheduler holds.
//
// Queues: `waiting` (FCFS) and `running`. A sequence whose prefill is split into chunks holds its
// blocks (status RUNNING) but stays at the front of `waiting` until its last chunk is scheduled,
// so it continues before any new one; a prefill step always makes progress on it, so decode
// (and so preemption) never runs while one is mid-prefill.
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "cache/block_manager.h"
#include "scheduler/sequence.h"

namespace nanovllm {

struct SchedulerConfig {
  int32_t max_num_seqs = 512;
  int32_t max_num_batched_tokens = 16384;
  int32_t max_model_len = 4096;
  std::vector<int32_t> eos_token_ids;
  int32_t block_size = 16;
  int32_t num_blocks = 0;
  bool enable_prefix_caching = true;

  // Throws nanovllm::Error naming the field and the allowed range.
  void validate() const;
};

struct ScheduledSeq {
  Sequence* seq = nullptr;
  // Computes tokens [seq->num_computed_tokens, + num_new_tokens) of seq->token_ids.
  int32_t num_new_tokens = 0;
  // True when the chunk ends at the sequence's last token: its logits are sampled.
  bool samples = false;
};

struct ScheduledBatch {
  bool is_prefill = false;
  std::vector<ScheduledSeq> seqs;  // empty only when the scheduler has nothing left to do

  bool empty() const { return seqs.empty(); }
  int32_t num_tokens() const;
  int32_t num_samples() const;  // how many tokens postprocess expects
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config, BlockManager::Hasher hasher = {});

  // Queues a new sequence (status WAITING, nothing computed). Throws nanovllm::Error when its
  // prompt is longer than max_model_len or needs more KV blocks than the cache has: such a
  // request could never run.
  void add(std::shared_ptr<Sequence> seq);

  // Prefill first: waiting sequences while max_num_seqs (counting running ones too), the token
  // budget (tokens to compute, cached ones excluded) and free blocks allow, the last one possibly a
  // partial chunk. Otherwise one decode token for each running sequence, preempting the most
  // recently added ones when blocks run out. Returns an empty batch only when is_finished().
  ScheduledBatch schedule();

  // sampled: one token per ScheduledSeq with samples == true, in batch order. Advances computed
  // tokens, appends the sampled tokens and finishes sequences on eos (unless ignore_eos), a stop
  // id, max_tokens, max_model_len or the cache's capacity. Returns the sequences finished here.
  std::vector<std::shared_ptr<Sequence>> postprocess(const ScheduledBatch& batch,
                                                     std::span<const int32_t> sampled);

  // Finishes a waiting or running sequence for a reason the caller decided (STOP_STRING, ABORT):
  // frees its blocks and drops it from the queues. Returns false when no such sequence is queued.
  bool finish(int64_t seq_id, FinishReason reason);

  bool is_finished() const { return waiting_.empty() && running_.empty(); }
  int32_t num_waiting() const { return int32_t(waiting_.size()); }
  int32_t num_running() const { return int32_t(running_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  // Longest a sequence may grow (prompt + generated): min(max_model_len, num_blocks * block_size).
  int32_t max_sequence_len() const { return max_len_; }
  const SchedulerConfig& config() const { return config_; }
  const BlockManager& block_manager() const { return block_manager_; }
  // See BlockManager::reset_prefix_cache: false while any sequence holds blocks.
  bool reset_prefix_cache() { return block_manager_.reset_prefix_cache(); }
  // Restarts the block manager's prefix-cache hit / miss counts (EngineStats::cached_prompt_tokens).
  void reset_prefix_cache_counters() { block_manager_.reset_counters(); }

 private:
  ScheduledBatch schedule_prefill();
  ScheduledBatch schedule_decode();
  void preempt(const std::shared_ptr<Sequence>& seq);
  FinishReason stop_reason(const Sequence& seq, int32_t token) const;
  void release(Sequence& seq, FinishReason reason);

  SchedulerConfig config_;
  int32_t max_len_;
  BlockManager block_manager_;
  std::deque<std::shared_ptr<Sequence>> waiting_;
  std::deque<std::shared_ptr<Sequence>> running_;
  int64_t num_preemptions_ = 0;
};

}  // namespace nanovllm
