#pragma once
// The engine's own thread: the only one that touches the LLM. HTTP threads submit requests;
// the worker tokenizes them, adds them to the engine between steps (continuous batching: a new
// request joins the running batch at the next step), steps while anything runs, publishes every
// step's progress to the requests' ChoiceSets, and aborts the requests whose clients went away.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "nanovllm/llm.h"
#include "server/choice_set.h"
#include "server/openai_request.h"
#include "server/server_metrics.h"

namespace nanovllm::server {

class EngineWorker {
 public:
  explicit EngineWorker(LLM& llm);
  ~EngineWorker();  // shutdown(), then joins the thread
  // Thread-safe: fails what is queued or running (503) and refuses new requests; the engine
  // thread ends after its current step.
  void shutdown();
  EngineWorker(const EngineWorker&) = delete;
  EngineWorker& operator=(const EngineWorker&) = delete;

  // Thread-safe. The request's choices appear in the returned set as the engine runs them.
  std::shared_ptr<ChoiceSet> submit(GenerationRequest request);
  // Runs `task` on the engine thread between two steps (the LLM belongs to that thread) and
  // returns its result; thread-safe. After shutdown() the future holds an error.
  template <class Result>
  std::future<Result> run_on_engine(std::function<Result(LLM&)> task) {
    auto packaged = std::make_shared<std::packaged_task<Result()>>([this, task] { return task(llm_); });
    std::future<Result> result = packaged->get_future();
    {
      std::lock_guard lock(mutex_);
      if (!stop_) tasks_.push_back([packaged] { (*packaged)(); });
    }  // when stopping, `packaged` dies unrun: the future reports a broken promise
    wake_.notify_all();
    return result;
  }
  // Engine requests running now (for tests).
  int64_t running_requests() const { return running_count_.load(); }
  // Thread-safe: the engine's state after its latest step and the request counters.
  ServerMetrics metrics() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<ChoiceSet> choices;
    Clock::time_point arrival;
  };
  struct Running {
    std::shared_ptr<ChoiceSet> choices;
    size_t index = 0;
    int32_t last_token = -1;  // the token before the next one (a token's text depends on it)
    std::string echo_text;    // echo: the prompt's text, led into the first update
    std::vector<int32_t> echo_ids;  // echo with logprobs: the prompt's tokens
    bool echo_pending = false;
    Clock::time_point arrival;
    double first_token_s = -1;  // seconds from arrival to the first token; -1 before it
    int32_t tokens = 0;
  };
  void loop();
  void admit(Pending& pending);
  void abort_cancelled();
  void publish(const std::vector<RequestOutput>& outputs);
  void fail_all(int status, const std::string& message);
  template <class Update>
  void update_metrics(Update update);
  std::vector<int32_t> tokenize(const PromptInput& prompt, const GenerationRequest& request) const;
  // The response's view of a delta's logprobs: each token as the text it adds after `previous`.
  std::vector<LogprobEntry> logprob_entries(const RequestOutput& out, int32_t& previous) const;
  std::vector<LogprobEntry> prompt_entries(const RequestOutput& out, const std::vector<int32_t>& prompt) const;
  std::string token_text(int32_t previous, const std::string& before, int32_t token) const;
  // `token` after `previous` (-1: none) as a response shows it, with `lp` (null: unknown).
  LogprobEntry logprob_entry(int32_t previous, int32_t token, const TokenLogprob* lp) const;

  LLM& llm_;
  SamplingParams model_defaults_;
  std::mutex mutex_;  // guards pending_ and stop_
  std::condition_variable wake_;
  std::deque<Pending> pending_;
  std::deque<std::function<void()>> tasks_;  // run_on_engine's, guarded by mutex_
  bool stop_ = false;
  std::unordered_map<int64_t, Running> running_;  // engine request id -> its choice; worker only
  std::atomic<int64_t> running_count_{0};
  mutable std::mutex metrics_mutex_;  // guards metrics_
  ServerMetrics metrics_;
  std::thread thread_;
};

}  // namespace nanovllm::server
