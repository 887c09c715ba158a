#pragma once
// The engine loop (nano-vllm's LLMEngine): owns the model, its KV cache, the scheduler and the
// runner on one backend; turns requests into sequences and sampled tokens into outputs.
#include <chrono>
#include <memory>
#include <optional>
#include <unordered_map>

#include "backend/backend.h"
#include "cache/kv_cache.h"
#include "engine/model_runner.h"
#include "model/decoder_model.h"
#include "nanovllm/llm.h"
#include "scheduler/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace nanovllm {

class LLMEngine {
 public:
  explicit LLMEngine(Config config);
  ~LLMEngine();

  int64_t add_request(const Prompt& prompt, const SamplingParams& params);
  // One step; the outputs of every request it advanced (their token ids and text so far, or
  // with kDelta what is new since their last output). A request reported finished here is
  // forgotten (take_output no longer knows it).
  std::vector<RequestOutput> step(OutputKind kind = OutputKind::kCumulative);
  // One step without building outputs (step() copies each advanced request's prompt and
  // completion, ~1 MB a step at W1's 256 sequences): how many requests it finished.
  int32_t advance();
  bool is_finished() const { return scheduler_->is_finished(); }
  void abort_request(int64_t request_id);
  // Output of a request added earlier (finished or not); forgets it once finished and taken.
  RequestOutput take_output(int64_t request_id);

  // Teacher-forced pass over token_ids: `on_logits(first_position, logits [n, V], n)` sees the
  // logits of every position. The engine must be idle.
  void run_teacher_forced(const std::vector<int32_t>& token_ids,
                          const std::function<void(int32_t, std::span<const float>, int32_t)>& on_logits);

  const Config& config() const { return config_; }
  const ModelConfig& model_config() const { return model_->config(); }
  const Tokenizer* tokenizer() const { return tokenizer_ ? &*tokenizer_ : nullptr; }
  EngineStats stats() const;
  void reset_stats();
  bool reset_prefix_cache() { return scheduler_->reset_prefix_cache(); }

 private:
  struct Request;
  void init_kv_cache();
  // Runs one step; the ids of the requests that sampled a token in it.
  std::vector<int64_t> run_step();
  bool is_done(const Request& request) const;
  void detokenize(Request& request);
  RequestOutput output_of(const Request& request) const;
  RequestOutput delta_of(Request& request) const;
  std::string finish_reason_of(const Request& request) const;  // "" while it runs

  Config config_;
  std::optional<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<DecoderModel> model_;
  KvDType kv_dtype_ = KvDType::F32;
  int32_t num_blocks_ = 0;
  std::unique_ptr<KvCache> kv_cache_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::unordered_map<int64_t, std::unique_ptr<Request>> requests_;
  int64_t next_request_id_ = 0;
  EngineStats stats_;
  int64_t preemptions_at_reset_ = 0;
};

}  // namespace nanovllm
