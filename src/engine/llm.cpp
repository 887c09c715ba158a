#include "nanovllm/llm.h"

#include <chrono>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "engine/llm_engine.h"
#include "engine/progress.h"
#include "engine/token_logprobs.h"

namespace nanovllm {
LLM::LLM(const std::string& model, Config config) {
  config.model = model;
  engine_ = std::make_unique<LLMEngine>(std::move(config));
}
LLM::LLM(Config config) : engine_(std::make_unique<LLMEngine>(std::move(config))) {}
LLM::~LLM() = default;
LLM::LLM(LLM&&) noexcept = default;
LLM& LLM::operator=(LLM&&) noexcept = default;

std::vector<RequestOutput> LLM::generate(const std::vector<Prompt>& prompts,
                                         const SamplingParams& params, bool show_progress) {
  return generate(prompts, std::vector<SamplingParams>{params}, show_progress);
}

std::vector<RequestOutput> LLM::generate(const std::vector<Prompt>& prompts,
                                         const std::vector<SamplingParams>& params,
                                         bool show_progress) {
  NANOVLLM_CHECK(params.size() == 1 || params.size() == prompts.size(), "generate: ",
                 params.size(), " sampling params for ", prompts.size(),
                 " prompts; expected 1 or one per prompt");
  NANOVLLM_CHECK(engine_->is_finished(), "generate: the engine still has requests in flight");
  std::vector<int64_t> ids;
  ids.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i)
    ids.push_back(engine_->add_request(prompts[i], params.size() == 1 ? params[0] : params[i]));

  Progress progress(int64_t(prompts.size()), show_progress);
  int64_t finished = 0;
  while (!engine_->is_finished()) {
    const EngineStats before = engine_->stats();
    const auto t0 = std::chrono::steady_clock::now();
    finished += engine_->advance();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const EngineStats after = engine_->stats();
    const int64_t prefill = after.prompt_tokens - before.prompt_tokens;
    progress.update(finished, prefill, prefill ? 0 : after.generated_tokens - before.generated_tokens,
                    dt);
  }
  progress.close();
  std::vector<RequestOutput> outputs;
  outputs.reserve(ids.size());
  for (int64_t id : ids) outputs.push_back(engine_->take_output(id));
  return outputs;
}

int64_t LLM::add_request(const Prompt& prompt, const SamplingParams& params) {
  return engine_->add_request(prompt, params);
}
std::vector<RequestOutput> LLM::step(OutputKind kind) { return engine_->step(kind); }
bool LLM::is_finished() const { return engine_->is_finished(); }
void LLM::abort_request(int64_t request_id) { engine_->abort_request(request_id); }

std::vector<double> LLM::score(const std::vector<int32_t>& token_ids) {
  std::vector<double> logprobs(token_ids.size(), std::numeric_limits<double>::quiet_NaN());
  const int64_t vocab = engine_->model_config().vocab_size;
  engine_->run_teacher_forced(token_ids, [&](int32_t first, std::span<const float> logits, int32_t n) {
    for (int32_t j = 0; j < n; ++j) {
      const int32_t pos = first + j;  // row `pos` predicts token pos + 1
      if (pos + 1 >= int32_t(token_ids.size())) continue;
      logprobs[pos + 1] = token_logprob(logits.subspan(size_t(j) * vocab, vocab), token_ids[pos + 1], 0).logprob;
    }
  });
  return logprobs;
}

std::vector<float> LLM::prompt_logprobs(const std::vector<int32_t>& token_ids) {
  const int64_t vocab = engine_->model_config().vocab_size;
  std::vector<float> out(token_ids.size() * size_t(vocab));
  engine_->run_teacher_forced(token_ids, [&](int32_t first, std::span<const float> logits, int32_t n) {
    for (int32_t j = 0; j < n; ++j)
      log_softmax_into(logits.subspan(size_t(j) * vocab, vocab), &out[size_t(first + j) * vocab]);
  });
  return out;
}

std::vector<int32_t> LLM::encode(const std::string& text, bool add_special_tokens) const {
  const Tokenizer* tok = engine_->tokenizer();
  NANOVLLM_CHECK(tok != nullptr, "encode: this model has no tokenizer");
  return tok->encode(text, add_special_tokens);
}

std::string LLM::apply_chat_template(
    const std::vector<std::pair<std::string, std::string>>& messages, bool add_generation_prompt,
    bool enable_thinking) const {
  const Tokenizer* tok = engine_->tokenizer();
  NANOVLLM_CHECK(tok != nullptr, "chat: this model has no tokenizer");
  std::vector<ChatMessage> chat;
  for (const auto& [role, content] : messages) chat.push_back(ChatMessage{role, content});
  return tok->apply_chat_template(chat, add_generation_prompt, enable_thinking);
}

std::string LLM::decode(const std::vector<int32_t>& ids) const {
  const Tokenizer* tok = engine_->tokenizer();
  NANOVLLM_CHECK(tok != nullptr, "decode: this model has no tokenizer");
  return tok->decode(ids, true);
}

SamplingParams LLM::default_sampling_params() const {
  const ModelConfig& m = engine_->model_config();
  SamplingParams p;
  if (m.default_temperature) p.temperature = *m.default_temperature;
  if (m.default_top_p) p.top_p = *m.default_top_p;
  if (m.default_top_k) p.top_k = *m.default_top_k;
  return p;
}

const Config& LLM::config() const { return engine_->config(); }
EngineStats LLM::stats() const { return engine_->stats(); }
void LLM::reset_stats() { engine_->reset_stats(); }
bool LLM::reset_prefix_cache() { return engine_->reset_prefix_cache(); }

}  // namespace nanovllm
