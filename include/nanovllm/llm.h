#pragma once
// The library API, mirroring nano-vllm's LLM: generate() for offline batches, and the step-wise
// add_request/step/is_finished that the server and CLI drive.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "nanovllm/config.h"
#include "nanovllm/sampling_params.h"

namespace nanovllm {

class LLMEngine;

// A prompt is text (tokenized with the model's tokenizer) or token ids used as they are.
using Prompt = std::variant<std::string, std::vector<int32_t>>;

// What step() reports of each request it advanced: everything so far, or only what is new since
// the request's previous report (vLLM's RequestOutputKind.DELTA: what a streaming server wants,
// with no copy of the whole prompt and completion every step).
enum class OutputKind { kCumulative, kDelta };

// A sampled token's log-probability under the model's raw next-token distribution (the
// log-softmax of the logits before temperature, top-k and top-p, as vLLM reports by default),
// and with SamplingParams::logprobs = N > 0 the N most likely tokens with theirs.
struct TokenLogprob {
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // (token id, log-probability), most likely first
};

struct RequestOutput {
  int64_t request_id = 0;
  std::vector<int32_t> prompt_token_ids;  // kDelta: in a request's first output only
  // The completion, decoded. kDelta: the new text only; until the request finishes it holds back
  // the last (longest stop string - 1) bytes, which a later stop string could still cut.
  std::string text;
  std::vector<int32_t> token_ids;  // the completion's tokens (kDelta: the new ones)
  std::vector<TokenLogprob> logprobs;  // one per entry of token_ids when the request asked
  // With SamplingParams::prompt_logprobs: one per prompt token, the first empty (nothing precedes
  // it). kDelta: in a request's first output.
  std::vector<std::optional<TokenLogprob>> prompt_logprobs;
  std::string finish_reason;       // "stop" (eos, stop id or string), "length", or "" while running
  bool finished = false;
};

// Counters of the whole run so far (what a benchmark reports).
struct EngineStats {
  int64_t prompt_tokens = 0;        // prompt tokens computed (cache hits excluded)
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  int64_t num_kv_blocks = 0;
  int64_t kv_block_size = 0;
  int64_t kv_bytes_per_token = 0;  // all layers, K and V, scales included
  int64_t peak_device_bytes = 0;
  // The scheduler now (not counters): sequences running / waiting, KV blocks free.
  int64_t num_running_seqs = 0;
  int64_t num_waiting_seqs = 0;
  int64_t num_free_kv_blocks = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  std::string device;        // "cpu" or "cuda"
  std::string device_name;   // the hardware: the GPU's name (e.g. "NVIDIA H100 80GB HBM3"), or "cpu"
  std::string kv_cache_dtype;  // resolved, e.g. "bf16", "int8"
};

class LLM {
 public:
  // model: a Hugging Face folder or .gguf file; may be empty when config.preset is set.
  explicit LLM(const std::string& model, Config config = {});
  explicit LLM(Config config);
  ~LLM();
  LLM(LLM&&) noexcept;
  LLM& operator=(LLM&&) noexcept;

  // One SamplingParams for all prompts, or one per prompt. Outputs are in submission order.
  std::vector<RequestOutput> generate(const std::vector<Prompt>& prompts,
                                      const std::vector<SamplingParams>& params,
                                      bool show_progress = false);
  std::vector<RequestOutput> generate(const std::vector<Prompt>& prompts,
                                      const SamplingParams& params = {},
                                      bool show_progress = false);

  int64_t add_request(const Prompt& prompt, const SamplingParams& params);
  // Runs one engine step; returns the requests that made progress (new tokens) in it, finished
  // ones with finished = true (reported once; the engine then forgets them).
  std::vector<RequestOutput> step(OutputKind kind = OutputKind::kCumulative);
  bool is_finished() const;
  void abort_request(int64_t request_id);

  // Log-probability of each token given those before it (NaN for the first), from the engine's
  // own forward pass. Runs outside the scheduler; the engine must be idle.
  std::vector<double> score(const std::vector<int32_t>& token_ids);
  // Next-token log-probabilities for every position: [n, vocab] row-major (for eval).
  std::vector<float> prompt_logprobs(const std::vector<int32_t>& token_ids);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = true) const;
  // Formats (role, content) messages with the model's chat format, ready for encode(..., false).
  std::string apply_chat_template(const std::vector<std::pair<std::string, std::string>>& messages,
                                  bool add_generation_prompt = true,
                                  bool enable_thinking = true) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  // SamplingParams{} with the model's generation_config.json defaults (temperature, top_p, top_k).
  SamplingParams default_sampling_params() const;
  const Config& config() const;
  EngineStats stats() const;
  void reset_stats();
  // Forgets every cached prompt prefix, as vLLM's LLM.reset_prefix_cache(): the next requests
  // compute all their prompt tokens (e.g. to time a repeated run). Returns false, changing
  // nothing, while requests hold KV blocks.
  bool reset_prefix_cache();

 private:
  std::unique_ptr<LLMEngine> engine_;
};

}  // namespace nanovllm
