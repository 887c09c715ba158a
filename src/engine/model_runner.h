#pragma once
// Runs one scheduled step on the device: builds the BatchInput, uploads it into persistent device
// buffers, runs the model (replaying a captured graph for decode batches when it can), and samples.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "cache/kv_cache.h"
#include "engine/step_buffers.h"
#include "model/decoder_model.h"
#include "nanovllm/llm.h"
#include "scheduler/scheduler.h"

namespace nanovllm {

struct RunnerConfig {
  int32_t max_num_batched_tokens = 0;
  int32_t max_num_seqs = 0;
  int32_t max_model_len = 0;
  int32_t block_size = 0;
  bool enforce_eager = false;
};

// Receives float32 logits [n, V] for consecutive positions [first_position, first_position + n)
// of a sequence that asked for all of its logits (score / eval).
using LogitsSink = std::function<void(int64_t seq_id, int32_t first_position,
                                      std::span<const float> logits, int32_t n)>;

class ModelRunner {
 public:
  ModelRunner(DecoderModel& model, Backend& backend, KvCache& kv, const RunnerConfig& config);
  ~ModelRunner();

  // One sampled token per ScheduledSeq whose `samples` is set, in batch order. Sequences whose
  // id is in `all_logits_for` also have the logits of every new token passed to `sink`.
  std::vector<int32_t> run(const ScheduledBatch& batch,
                           const std::vector<int64_t>& all_logits_for = {},
                           const LogitsSink& sink = {});

  // After run(): the log-probabilities of its sampled tokens, aligned with them, for the rows
  // whose sequence asked (SamplingParams::logprobs >= 0; empty optionals for the others). Reads
  // those rows' logits back to the host.
  std::vector<std::optional<TokenLogprob>> sampled_logprobs(const ScheduledBatch& batch,
                                                            const std::vector<int32_t>& sampled);

  int32_t max_logit_rows() const { return max_logit_rows_; }
  int32_t num_captured_graphs() const { return int32_t(graphs_.size()); }

 private:
  // With use_graph, pads `input` in place to its graph bucket (pad_decode_batch).
  Tensor forward_and_logits(BatchInput& input, bool use_graph);
  int32_t graph_bucket(int32_t num_seqs) const;
  void emit_all_logits(const BatchInput& input, const ScheduledBatch& batch,
                       const std::vector<int64_t>& ids, const LogitsSink& sink);

  DecoderModel& model_;
  Backend& backend_;
  KvCache& kv_;
  RunnerConfig config_;
  int32_t block_table_width_;
  int32_t max_logit_rows_;
  StepBuffers buffers_;
  Tensor last_hidden_;  // [T, H] of the latest eager forward
  Tensor last_logits_;  // [sampled rows (+ graph padding), V] float32 of the latest run()
  std::vector<int32_t> graph_sizes_;
  // (bucket, even_contexts) -> graph: a graph keeps the split-K its capture chose, which
  // depends on whether the contexts were even (AttentionMeta::even_contexts).
  std::map<std::pair<int32_t, bool>, std::unique_ptr<CapturedStep>> graphs_;
  std::vector<float> host_logits_;
};

}  // namespace nanovllm
