#include "server/choice_set.h"

#include <algorithm>

namespace nanovllm::server {

bool ChoiceSnapshot::all_finished() const {
  for (const ChoiceState& c : choices)
    if (!c.finished) return false;
  return true;
}

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

void ChoiceSet::update(size_t index, const RequestOutput& out) {
  {
    std::lock_guard lock(mutex_);
    ChoiceState& c = choices_.at(index);
    c.text += out.text;
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
                                     const std::vector<size_t>* text_from) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return version_ > seen; });
  if (!text_from) return {version_, choices_, error_, error_status_, admitted_};
  ChoiceSnapshot s{version_, {}, error_, error_status_, admitted_};
  s.choices.reserve(choices_.size());
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceState& c = choices_[i];
    const size_t from = std::min(i < text_from->size() ? (*text_from)[i] : 0, c.text.size());
    s.choices.push_back({c.text.substr(from), from, c.prompt_tokens, c.completion_tokens,
                         c.finish_reason, c.finished});
  }
  return s;
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
