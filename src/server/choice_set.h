#pragma once
// The generations of one HTTP request (one choice per prompt), shared by the engine thread, which
// publishes each step's progress, and the HTTP thread, which waits for it. All access is under
// one mutex; readers get copies.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nanovllm/llm.h"

namespace nanovllm::server {

// One generated token's log-probability as a response shows it: the token as text.
struct LogprobEntry {
  std::string token;
  float logprob = 0;
  bool known = true;  // false: an echoed prompt's first token (nothing precedes it)
  std::vector<std::pair<std::string, float>> top;  // most likely first
};

struct ChoiceState {
  std::string text;                 // the completion so far (nothing a stop string could still cut)
  size_t text_offset = 0;           // in a snapshot: where `text` starts in the completion
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  std::vector<LogprobEntry> logprobs;  // when asked: one per completion token
  size_t logprobs_offset = 0;       // in a snapshot: where `logprobs` starts
  std::string finish_reason;        // "stop" or "length" once finished
  bool finished = false;
};

bool all_finished(const std::vector<ChoiceState>& choices);

struct ChoiceSnapshot {
  uint64_t version = 0;             // grows with every change
  std::vector<ChoiceState> choices;
  std::optional<std::string> error;  // the engine could not serve the request
  int error_status = 0;             // HTTP status of `error`
  bool admitted = false;            // every prompt is in the engine (prompt_tokens are known)
  bool all_finished() const;
};

class ChoiceSet {
 public:
  explicit ChoiceSet(size_t num_choices) : choices_(num_choices) {}

  // Engine side.
  void set_prompt_tokens(size_t index, int32_t n);
  void mark_admitted();
  // `out` is a kDelta output: its text and tokens are appended, `logprobs` (its tokens' entries)
  // too.
  void update(size_t index, const RequestOutput& out, std::vector<LogprobEntry> logprobs = {});
  void fail(int status, const std::string& message);

  // HTTP side: blocks until the version passes `seen` (or `timeout`), then returns a copy; with
  // `text_from` (one offset a choice), only each text's bytes from that offset (a stream copies
  // what it has not sent yet, not the whole completion at every step).
  // Likewise `logprobs_from` for the logprob entries.
  ChoiceSnapshot wait_newer(uint64_t seen, std::chrono::milliseconds timeout,
                            const std::vector<size_t>* text_from = nullptr,
                            const std::vector<size_t>* logprobs_from = nullptr) const;
  // HTTP side, whole responses: blocks until every choice finished or an error (or `timeout`);
  // copies the choices once, not at every step.
  ChoiceSnapshot wait_done(std::chrono::milliseconds timeout) const;
  // The client went away: the engine thread aborts the choices still running.
  void cancel();
  bool cancelled() const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<ChoiceState> choices_;
  std::optional<std::string> error_;
  int error_status_ = 0;
  uint64_t version_ = 0;
  bool admitted_ = false;
  bool cancelled_ = false;
};

}  // namespace nanovllm::server
