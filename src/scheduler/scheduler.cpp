#include "scheduler/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace nanovllm {

void SchedulerConfig::validate() const {
  NANOVLLM_CHECK(max_num_seqs >= 1, "scheduler: max_num_seqs is ", max_num_seqs, ", expected >= 1");
  NANOVLLM_CHECK(max_num_batched_tokens >= 1, "scheduler: max_num_batched_tokens is ",
                 max_num_batched_tokens, ", expected >= 1");
  NANOVLLM_CHECK(max_model_len >= 1, "scheduler: max_model_len is ", max_model_len, ", expected >= 1");
  NANOVLLM_CHECK(block_size >= 1, "scheduler: block_size is ", block_size, ", expected >= 1");
  NANOVLLM_CHECK(num_blocks >= 1, "scheduler: num_blocks is ", num_blocks, ", expected >= 1");
}

int32_t ScheduledBatch::num_tokens() const {
  int32_t total = 0;
  for (const ScheduledSeq& s : seqs) total += s.num_new_tokens;
  return total;
}

int32_t ScheduledBatch::num_samples() const {
  return int32_t(std::count_if(seqs.begin(), seqs.end(), [](const ScheduledSeq& s) { return s.samples; }));
}

namespace {

bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Removes the first sequence that `matches` from the queue; returns it, or null when absent.
template <class Match>
std::shared_ptr<Sequence> take_from(std::deque<std::shared_ptr<Sequence>>& queue, Match matches) {
  auto it = std::find_if(queue.begin(), queue.end(), [&](const auto& s) { return matches(*s); });
  if (it == queue.end()) return nullptr;
  std::shared_ptr<Sequence> seq = *it;
  queue.erase(it);
  return seq;
}

}  // namespace

Scheduler::Scheduler(SchedulerConfig config, BlockManager::Hasher hasher)
    : config_((config.validate(), std::move(config))),
      max_len_(int32_t(std::min<int64_t>(config_.max_model_len,
                                         int64_t(config_.num_blocks) * config_.block_size))),
      block_manager_(config_.num_blocks, config_.block_size, config_.enable_prefix_caching,
                     std::move(hasher)) {}

void Scheduler::add(std::shared_ptr<Sequence> seq) {
  NANOVLLM_CHECK(seq != nullptr, "Scheduler::add: null sequence");
  NANOVLLM_CHECK(seq->status == SequenceStatus::WAITING && seq->block_table.empty(), "request ",
                 seq->id, ": already scheduled (expected a new sequence)");
  NANOVLLM_CHECK(seq->num_tokens() <= config_.max_model_len, "request ", seq->id, ": the prompt has ",
                 seq->num_tokens(), " tokens, more than max_model_len ", config_.max_model_len);
  const int32_t blocks = block_manager_.blocks_for(seq->num_tokens());
  NANOVLLM_CHECK(blocks <= config_.num_blocks, "request ", seq->id, ": the prompt has ",
                 seq->num_tokens(), " tokens, needing ", blocks, " KV cache blocks of ",
                 config_.block_size, " tokens, but the cache has only ", config_.num_blocks,
                 " blocks (num_kvcache_blocks)");
  auto same_id = [&](const auto& queued) { return queued->id == seq->id; };
  NANOVLLM_CHECK(std::none_of(waiting_.begin(), waiting_.end(), same_id) &&
                     std::none_of(running_.begin(), running_.end(), same_id),
                 "request ", seq->id, ": a request with this id is already queued");
  seq->num_computed_tokens = 0;
  seq->num_cached_tokens = 0;
  seq->finish_reason = FinishReason::NONE;
  waiting_.push_back(std::move(seq));
}

ScheduledBatch Scheduler::schedule() {
  if (is_finished()) return {};
  ScheduledBatch batch = schedule_prefill();
  if (batch.empty()) batch = schedule_decode();
  NANOVLLM_CHECK(!batch.empty(), "Scheduler: nothing schedulable with ", waiting_.size(),
                 " waiting and ", running_.size(), " running sequences (",
                 block_manager_.num_free_blocks(), " free blocks)");
  return batch;
}

ScheduledBatch Scheduler::schedule_prefill() {
  ScheduledBatch batch;
  batch.is_prefill = true;
  int32_t budget = config_.max_num_batched_tokens;
  while (!waiting_.empty() && budget > 0) {
    Sequence& seq = *waiting_.front();
    if (seq.block_table.empty()) {  // not started (or preempted): allocate every block now
      // max_num_seqs caps the sequences that hold blocks, not only the batch, so a decode batch
      // never leaves running sequences out (which would starve them). One mid-prefill was
      // admitted before and always continues.
      if (int32_t(running_.size()) >= config_.max_num_seqs) break;
      if (!block_manager_.can_allocate(seq.token_ids, !seq.skip_prefix_cache)) break;
      seq.num_cached_tokens =
          block_manager_.allocate(seq.token_ids, seq.block_table, !seq.skip_prefix_cache);
      seq.num_computed_tokens = seq.num_cached_tokens;
      seq.status = SequenceStatus::RUNNING;
    }
    const int32_t remaining = seq.num_tokens() - seq.num_computed_tokens;
    const int32_t chunk = std::min(remaining, budget);
    budget -= chunk;
    const bool last_chunk = chunk == remaining;
    batch.seqs.push_back({&seq, chunk, last_chunk});
    if (!last_chunk) break;  // mid-prefill: stays first in line for the next step
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return batch;
}

ScheduledBatch Scheduler::schedule_decode() {
  ScheduledBatch batch;
  batch.is_prefill = false;
  std::vector<std::shared_ptr<Sequence>> scheduled;
  while (!running_.empty() && int32_t(scheduled.size()) < config_.max_num_seqs) {
    std::shared_ptr<Sequence> seq = std::move(running_.front());
    running_.pop_front();
    NANOVLLM_CHECK(seq->num_computed_tokens == seq->num_tokens() - 1, "Scheduler: request ", seq->id,
                   " is running with ", seq->num_computed_tokens, " of ", seq->num_tokens(),
                   " tokens computed (expected all but the last)");
    bool can_run = true;
    while (!block_manager_.can_append(seq->num_tokens(), seq->block_table)) {
      if (!running_.empty()) {
        std::shared_ptr<Sequence> victim = std::move(running_.back());
        running_.pop_back();
        preempt(victim);
      } else {
        preempt(seq);
        can_run = false;
        break;
      }
    }
    if (!can_run) break;
    block_manager_.may_append(seq->num_tokens(), seq->block_table);
    batch.seqs.push_back({seq.get(), 1, true});
    scheduled.push_back(std::move(seq));
  }
  running_.insert(running_.begin(), std::make_move_iterator(scheduled.begin()),
                  std::make_move_iterator(scheduled.end()));
  return batch;
}

void Scheduler::preempt(const std::shared_ptr<Sequence>& seq) {
  block_manager_.deallocate(seq->block_table);
  seq->status = SequenceStatus::WAITING;
  seq->num_computed_tokens = 0;
  seq->num_cached_tokens = 0;
  waiting_.push_front(seq);
  ++num_preemptions_;
}

FinishReason Scheduler::stop_reason(const Sequence& seq, int32_t token) const {
  if (!seq.params.ignore_eos && contains(config_.eos_token_ids, token)) return FinishReason::STOP;
  if (contains(seq.params.stop_token_ids, token)) return FinishReason::STOP;
  if (seq.num_completion_tokens() >= seq.params.max_tokens) return FinishReason::LENGTH;
  if (seq.num_tokens() >= max_len_) return FinishReason::LENGTH;
  return FinishReason::NONE;
}

void Scheduler::release(Sequence& seq, FinishReason reason) {
  block_manager_.deallocate(seq.block_table);
  seq.status = SequenceStatus::FINISHED;
  seq.finish_reason = reason;
}

std::vector<std::shared_ptr<Sequence>> Scheduler::postprocess(const ScheduledBatch& batch,
                                                              std::span<const int32_t> sampled) {
  NANOVLLM_CHECK(int32_t(sampled.size()) == batch.num_samples(), "Scheduler::postprocess: ",
                 sampled.size(), " sampled tokens for ", batch.num_samples(), " sampling sequences");
  std::vector<std::shared_ptr<Sequence>> finished;
  size_t next_sample = 0;
  for (const ScheduledSeq& s : batch.seqs) {
    Sequence& seq = *s.seq;
    NANOVLLM_CHECK(seq.num_computed_tokens + s.num_new_tokens <= seq.num_tokens(),
                   "Scheduler::postprocess: request ", seq.id, " computed past its tokens");
    seq.num_computed_tokens += s.num_new_tokens;
    block_manager_.register_computed(seq.token_ids, seq.num_computed_tokens, seq.block_table);
    if (!s.samples) continue;
    const int32_t token = sampled[next_sample++];
    seq.append_token(token);
    const FinishReason reason = stop_reason(seq, token);
    if (reason == FinishReason::NONE) continue;
    std::shared_ptr<Sequence> owner = take_from(running_, [&](const Sequence& s) { return &s == &seq; });
    NANOVLLM_CHECK(owner != nullptr, "Scheduler::postprocess: request ", seq.id, " is not running");
    release(seq, reason);
    finished.push_back(std::move(owner));
  }
  return finished;
}

bool Scheduler::finish(int64_t seq_id, FinishReason reason) {
  NANOVLLM_CHECK(reason != FinishReason::NONE, "Scheduler::finish: request ", seq_id,
                 ": a finish reason is required");
  auto has_id = [&](const Sequence& s) { return s.id == seq_id; };
  std::shared_ptr<Sequence> seq = take_from(running_, has_id);
  if (!seq) seq = take_from(waiting_, has_id);
  if (!seq) return false;
  release(*seq, reason);
  return true;
}

}  // namespace nanovllm
