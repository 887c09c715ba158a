#include "server/engine_worker.h"

#include <exception>

#include "core/error.h"

namespace nanovllm::server {

EngineWorker::EngineWorker(LLM& llm) : llm_(llm), model_defaults_(llm.default_sampling_params()) {
  metrics_.engine = llm_.stats();
  thread_ = std::thread([this] { loop(); });
}

EngineWorker::~EngineWorker() {
  shutdown();
  thread_.join();
}

void EngineWorker::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
}

std::shared_ptr<ChoiceSet> EngineWorker::submit(GenerationRequest request) {
  auto choices = std::make_shared<ChoiceSet>(request.prompts.size() * size_t(request.n));
  {
    std::lock_guard lock(mutex_);
    if (stop_) {
      choices->fail(503, "the server is shutting down");
      return choices;
    }
    pending_.push_back({std::move(request), choices, Clock::now()});
  }
  wake_.notify_all();
  return choices;
}

ServerMetrics EngineWorker::metrics() const {
  std::lock_guard lock(metrics_mutex_);
  return metrics_;
}

template <class Update>
void EngineWorker::update_metrics(Update update) {
  std::lock_guard lock(metrics_mutex_);
  update(metrics_);
}

std::vector<int32_t> EngineWorker::tokenize(const PromptInput& prompt,
                                            const GenerationRequest& request) const {
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&prompt)) return *ids;
  if (const auto* text = std::get_if<std::string>(&prompt)) return llm_.encode(*text, true);
  const auto& messages = std::get<ChatMessages>(prompt);
  return llm_.encode(llm_.apply_chat_template(messages, true, request.enable_thinking), false);
}

// Adds every prompt of one HTTP request, or none: a prompt the engine refuses (too long, a token
// outside the vocabulary) fails the whole request with the engine's message.
void EngineWorker::admit(Pending& p) {
  GenerationRequest& r = p.request;
  SamplingParams params = r.sampling;
  if (!r.temperature_given) params.temperature = model_defaults_.temperature;
  if (!r.top_p_given) params.top_p = model_defaults_.top_p;
  if (!r.top_k_given) params.top_k = model_defaults_.top_k;
  std::vector<int64_t> added;
  try {
    for (size_t i = 0; i < r.prompts.size(); ++i) {
      const std::vector<int32_t> ids = tokenize(r.prompts[i], r);
      SamplingParams prompt_params = params;
      if (!r.max_tokens_given) {
        const int32_t room = llm_.config().max_model_len - int32_t(ids.size());
        NANOVLLM_CHECK(room > 0, "the prompt has ", ids.size(), " tokens, which leaves no room to ",
                       "generate within max_model_len ", llm_.config().max_model_len);
        prompt_params.max_tokens = r.chat ? room : std::min(16, room);  // OpenAI's defaults
      }
      for (int32_t j = 0; j < r.n; ++j) {
        SamplingParams choice_params = prompt_params;
        // n choices of one seeded request must differ: seed, seed + 1, ... (unseeded requests
        // draw from their own request ids already)
        if (choice_params.seed) *choice_params.seed += uint64_t(j);
        const int64_t id = llm_.add_request(ids, choice_params);
        added.push_back(id);
        const size_t index = i * size_t(r.n) + size_t(j);
        Running& run = running_[id];
        run.choices = p.choices;
        run.index = index;
        run.last_token = ids.back();
        run.arrival = p.arrival;
        if (r.echo) {
          const auto* text = std::get_if<std::string>(&r.prompts[i]);
          run.echo_text = text ? *text : llm_.decode(ids);
          if (choice_params.prompt_logprobs >= 0) run.echo_ids = ids;
          run.echo_pending = true;
        }
        // usage counts a prompt once however many choices it has (as OpenAI's API and vLLM do)
        p.choices->set_prompt_tokens(index, j == 0 ? int32_t(ids.size()) : 0);
      }
    }
    running_count_.store(int64_t(running_.size()));
    p.choices->mark_admitted();
  } catch (const std::exception& e) {
    for (int64_t id : added) {
      llm_.abort_request(id);
      running_.erase(id);
    }
    running_count_.store(int64_t(running_.size()));
    update_metrics([&](ServerMetrics& m) { m.failed += int64_t(r.prompts.size()) * r.n; });
    // nanovllm::Error: the request is at fault (the engine names what); anything else is ours.
    const bool bad_request = dynamic_cast<const Error*>(&e) != nullptr;
    p.choices->fail(bad_request ? 400 : 500, bad_request ? e.what() : std::string("internal error: ") + e.what());
  }
}

void EngineWorker::abort_cancelled() {
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second.choices->cancelled()) {
      llm_.abort_request(it->first);
      it = running_.erase(it);
      update_metrics([](ServerMetrics& m) { ++m.aborted; });
    } else {
      ++it;
    }
  }
}

// A token decoded alone loses what its predecessor implies (SentencePiece drops a leading
// space at the start of a text): decode the pair and keep what the token adds. `before` is the
// predecessor decoded alone (one decode for all the candidates of a position).
std::string EngineWorker::token_text(int32_t previous, const std::string& before, int32_t token) const {
  if (previous < 0) return llm_.decode({token});
  const std::string both = llm_.decode({previous, token});
  return both.compare(0, before.size(), before) == 0 ? both.substr(before.size()) : llm_.decode({token});
}

LogprobEntry EngineWorker::logprob_entry(int32_t previous, int32_t token, const TokenLogprob* lp) const {
  const std::string before = previous < 0 ? std::string() : llm_.decode({previous});
  LogprobEntry e;
  e.token = token_text(previous, before, token);
  e.known = lp != nullptr;
  if (!lp) return e;
  e.logprob = lp->logprob;
  for (const auto& [id, value] : lp->top) e.top.emplace_back(token_text(previous, before, id), value);
  return e;
}

std::vector<LogprobEntry> EngineWorker::logprob_entries(const RequestOutput& out, int32_t& previous) const {
  std::vector<LogprobEntry> entries;
  for (size_t k = 0; k < out.logprobs.size() && k < out.token_ids.size(); ++k) {
    entries.push_back(logprob_entry(previous, out.token_ids[k], &out.logprobs[k]));
    previous = out.token_ids[k];
  }
  if (out.logprobs.empty() && !out.token_ids.empty()) previous = out.token_ids.back();
  return entries;
}

std::vector<LogprobEntry> EngineWorker::prompt_entries(const RequestOutput& out,
                                                       const std::vector<int32_t>& prompt) const {
  std::vector<LogprobEntry> entries;
  for (size_t k = 0; k < prompt.size(); ++k) {
    const bool known = k < out.prompt_logprobs.size() && out.prompt_logprobs[k].has_value();
    entries.push_back(logprob_entry(k == 0 ? -1 : prompt[k - 1], prompt[k], known ? &*out.prompt_logprobs[k] : nullptr));
  }
  return entries;
}

void EngineWorker::publish(const std::vector<RequestOutput>& outputs) {
  for (const RequestOutput& out_in : outputs) {
    auto it = running_.find(out_in.request_id);
    if (it == running_.end()) continue;
    const RequestOutput* out_ptr = &out_in;
    RequestOutput echoed;
    std::vector<LogprobEntry> logprobs;
    if (it->second.echo_pending) {  // the first update leads with the prompt
      echoed = out_in;
      echoed.text = it->second.echo_text + out_in.text;
      logprobs = prompt_entries(out_in, it->second.echo_ids);
      it->second.echo_pending = false;
      out_ptr = &echoed;
    }
    const RequestOutput& out = *out_ptr;
    for (LogprobEntry& e : logprob_entries(out, it->second.last_token)) logprobs.push_back(std::move(e));
    Running& run = it->second;
    const double since_arrival = std::chrono::duration<double>(Clock::now() - run.arrival).count();
    if (run.first_token_s < 0 && !out.token_ids.empty()) {
      run.first_token_s = since_arrival;
      update_metrics([&](ServerMetrics& m) { m.time_to_first_token.observe(since_arrival); });
    }
    run.tokens += int32_t(out.token_ids.size());
    const std::shared_ptr<ChoiceSet> choices = run.choices;
    const size_t index = run.index;
    if (out.finished) {
      const int32_t tokens = run.tokens;
      const double first_token_s = run.first_token_s;
      running_.erase(it);  // counted out before the client hears it finished
      running_count_.store(int64_t(running_.size()));
      update_metrics([&](ServerMetrics& m) {
        ++(out.finish_reason == "length" ? m.finished_length : m.finished_stop);
        m.e2e_request_latency.observe(since_arrival);
        if (tokens > 1) m.time_per_output_token.observe((since_arrival - first_token_s) / (tokens - 1));
      });
    }
    choices->update(index, out, std::move(logprobs));
  }
}

void EngineWorker::fail_all(int status, const std::string& message) {
  auto failed = std::move(running_);
  running_.clear();
  running_count_.store(0);
  update_metrics([&](ServerMetrics& m) { m.failed += int64_t(failed.size()); });
  for (auto& [id, r] : failed) {
    llm_.abort_request(id);
    r.choices->fail(status, message);
  }
}

void EngineWorker::loop() {
  for (;;) {
    std::deque<Pending> admitted;
    std::deque<std::function<void()>> tasks;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !pending_.empty() || !tasks_.empty() || !running_.empty(); });
      if (stop_) {
        for (Pending& p : pending_) p.choices->fail(503, "the server is shutting down");
        pending_.clear();
        tasks_.clear();  // their futures report broken promises
        break;
      }
      admitted.swap(pending_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();  // a packaged_task: its exception goes to its future
    for (Pending& p : admitted) admit(p);
    abort_cancelled();
    try {
      if (!llm_.is_finished()) publish(llm_.step(OutputKind::kDelta));
      else if (!running_.empty()) fail_all(500, "engine error: a request ended without an output");
    } catch (const std::exception& e) {
      // The step's requests cannot be trusted any more; later requests may still be served.
      fail_all(500, std::string("engine error: ") + e.what());
    }
    running_count_.store(int64_t(running_.size()));
    const EngineStats stats = llm_.stats();
    update_metrics([&](ServerMetrics& m) { m.engine = stats; });
  }
  fail_all(503, "the server is shutting down");
}

}  // namespace nanovllm::server
