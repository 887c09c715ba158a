#include "server/choice_set.h"

#include <algorithm>

namespace nanovllm::server {

bool all_finished(const std::vector<ChoiceState>& choices) {
  for (const ChoiceState& c : choices)
    if (!c.finished) return false;
  return true;
}

bool ChoiceSnapshot::all_finished() const { return server::all_finished(choices); }

void ChoiceSet::set_prompt_tokens(size_t index, int32_t n) {
  std::lock_guard lock(mutex_);
  choices_.at(index).prompt_tokens = n;
}

void ChoiceSet::mark_admitted() {
  {
    std::lock_guard lock(mutex_);
    admitted_ = true;
    ++version_;
  }
  changed_.notify_all();
}

void ChoiceSet::update(size_t index, const RequestOutput& out, std::vector<LogprobEntry> logprobs) {
  {
    std::lock_guard lock(mutex_);
    ChoiceState& c = choices_.at(index);
    c.text += out.text;
    for (LogprobEntry& e : logprobs) c.logprobs.push_back(std::move(e));
    c.completion_tokens += int32_t(out.token_ids.size());
    c.finished = out.finished;
    c.finish_reason = out.finish_reason;
    ++version_;
  }
  changed_.notify_all();
}

void ChoiceSet::fail(int status, const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    if (!error_) {
      error_ = message;
      error_status_ = status;
    }
    ++version_;
  }
  changed_.notify_all();
}

ChoiceSnapshot ChoiceSet::wait_newer(uint64_t seen, std::chrono::milliseconds timeout,
                                     const std::vector<size_t>* text_from,
                                     const std::vector<size_t>* logprobs_from) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return version_ > seen; });
  if (!text_from && !logprobs_from) return {version_, choices_, error_, error_status_, admitted_};
  auto offset = [](const std::vector<size_t>* from, size_t i, size_t size) {
    return std::min(from && i < from->size() ? (*from)[i] : 0, size);
  };
  ChoiceSnapshot s{version_, {}, error_, error_status_, admitted_};
  s.choices.reserve(choices_.size());
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceState& c = choices_[i];
    ChoiceState part;
    part.text_offset = offset(text_from, i, c.text.size());
    part.text = c.text.substr(part.text_offset);
    part.logprobs_offset = offset(logprobs_from, i, c.logprobs.size());
    part.logprobs.assign(c.logprobs.begin() + std::ptrdiff_t(part.logprobs_offset), c.logprobs.end());
    part.prompt_tokens = c.prompt_tokens;
    part.completion_tokens = c.completion_tokens;
    part.finish_reason = c.finish_reason;
    part.finished = c.finished;
    s.choices.push_back(std::move(part));
  }
  return s;
}

ChoiceSnapshot ChoiceSet::wait_done(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return error_.has_value() || (admitted_ && all_finished(choices_)); });
  return {version_, choices_, error_, error_status_, admitted_};
}

void ChoiceSet::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
}

bool ChoiceSet::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

}  // namespace nanovllm::server
