#include "engine/model_runner.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "engine/batch_builder.h"
#include "engine/graph_buckets.h"
#include "engine/token_logprobs.h"
#include "engine/sampling_rows.h"

namespace nanovllm {

ModelRunner::ModelRunner(DecoderModel& model, Backend& backend, KvCache& kv,
                         const RunnerConfig& config)
    : model_(model), backend_(backend), kv_(kv), config_(config),
      block_table_width_((config.max_model_len + config.block_size - 1) / config.block_size),
      max_logit_rows_(config.max_num_seqs),
      buffers_(backend, config.max_num_batched_tokens, config.max_num_seqs, block_table_width_,
               config.max_num_seqs) {
  if (!config.enforce_eager) graph_sizes_ = decode_graph_sizes(config.max_num_seqs);
}

ModelRunner::~ModelRunner() = default;

int32_t ModelRunner::graph_bucket(int32_t num_seqs) const {
  return nanovllm::graph_bucket(graph_sizes_, num_seqs);
}

Tensor ModelRunner::forward_and_logits(BatchInput& input, bool use_graph) {
  if (use_graph) {
    const int32_t num_seqs = input.num_seqs();
    const int32_t bucket = graph_bucket(num_seqs);
    pad_decode_batch(input, bucket);  // in place: the block tables are the step's largest rows
    // A captured graph keeps its launch parameters, so it must cover the longest context.
    input.max_context_len = config_.max_model_len;
    StepTensors step = buffers_.upload(input);
    Tensor indices = buffers_.logits_indices(bucket);
    auto run_once = [&] {
      Tensor hidden = model_.forward(step, kv_.layers());
      return model_.logits(hidden, indices);
    };
    const std::pair<int32_t, bool> key{bucket, input.even_contexts};
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      Tensor logits = run_once();  // warm-up outside capture (library handles, heuristics)
      backend_.synchronize();
      auto graph = backend_.capture([&] { run_once(); });
      if (!graph) {
        graph_sizes_.clear();  // this backend cannot capture: stay eager from now on
        std::fprintf(stderr, "[nanovllm] %s backend has no graph capture; decode runs eagerly\n",
                     backend_.name().c_str());
        return logits.rows(0, num_seqs);
      }
      it = graphs_.emplace(key, std::move(graph)).first;
      if (graphs_.size() == 1)
        std::fprintf(stderr, "[nanovllm] decode runs as CUDA graphs (first: batch %d)\n", bucket);
    }
    it->second->replay();
    // The graph writes the model's logits workspace, whose first rows are ours.
    return model_.logits_view(bucket).rows(0, num_seqs);
  }
  StepTensors step = buffers_.upload(input);
  last_hidden_ = model_.forward(step, kv_.layers());
  if (input.logits_indices.empty()) return Tensor();
  return model_.logits(last_hidden_, buffers_.logits_indices(int32_t(input.logits_indices.size())));
}

std::vector<int32_t> ModelRunner::run(const ScheduledBatch& batch,
                                      const std::vector<int64_t>& all_logits_for,
                                      const LogitsSink& sink) {
  BatchInput input = build_batch_input(batch, config_.block_size, block_table_width_);
  const bool use_graph = input.is_decode() && all_logits_for.empty() &&
                         graph_bucket(input.num_seqs()) > 0;
  std::vector<int32_t> sampled(input.logits_indices.size());  // before a graph step pads input
  Tensor logits = forward_and_logits(input, use_graph);
  last_logits_ = logits;

  if (!sampled.empty()) {
    std::vector<SamplingRow> rows = sampling_rows(batch);
    backend_.sample(logits, rows, sampled.data());
  }
  if (!all_logits_for.empty() && sink) emit_all_logits(input, batch, all_logits_for, sink);
  return sampled;
}

std::vector<std::optional<TokenLogprob>> ModelRunner::sampled_logprobs(
    const ScheduledBatch& batch, const std::vector<int32_t>& sampled) {
  std::vector<std::optional<TokenLogprob>> out(sampled.size());
  const int64_t vocab = model_.config().vocab_size;
  std::vector<float> row(size_t(vocab), 0.f);
  size_t r = 0;  // the sampled row of the next ScheduledSeq that samples
  for (const ScheduledSeq& s : batch.seqs) {
    if (!s.samples) continue;
    const int32_t n = s.seq->params.logprobs;
    if (n >= 0) {
      NANOVLLM_CHECK(int64_t(r) < last_logits_.dim(0), "logprobs: row ", r, " of ", last_logits_.dim(0));
      const auto* src = static_cast<const char*>(last_logits_.data) + int64_t(r) * vocab * int64_t(sizeof(float));
      backend_.copy_to_host(row.data(), src, row.size() * sizeof(float));
      out[r] = token_logprob(row, sampled[r], n);
    }
    ++r;
  }
  return out;
}

void ModelRunner::emit_all_logits(const BatchInput& input, const ScheduledBatch& batch,
                                  const std::vector<int64_t>& ids, const LogitsSink& sink) {
  const int64_t vocab = model_.config().vocab_size;
  for (size_t i = 0; i < batch.seqs.size(); ++i) {
    const Sequence& seq = *batch.seqs[i].seq;
    if (std::find(ids.begin(), ids.end(), seq.id) == ids.end()) continue;
    const int32_t row0 = input.cu_seqlens_q[i], rows = input.cu_seqlens_q[i + 1] - row0;
    for (int32_t done = 0; done < rows; done += max_logit_rows_) {
      const int32_t n = std::min(max_logit_rows_, rows - done);
      std::vector<int32_t> idx(n);
      for (int32_t j = 0; j < n; ++j) idx[j] = row0 + done + j;
      Tensor logits = model_.logits(last_hidden_, buffers_.upload_indices(idx));
      host_logits_.resize(size_t(n) * vocab);
      backend_.copy_to_host(host_logits_.data(), logits.data, host_logits_.size() * sizeof(float));
      sink(seq.id, seq.num_computed_tokens + done, host_logits_, n);
    }
  }
}

}  // namespace nanovllm
