#pragma once
// A streamed response's server-sent events from the request's successive snapshots: per choice a
// chunk with what is new (text, logprobs; with continuous usage also when only tokens advanced:
// text can lag its tokens), its finish chunk, then the usage chunk (include_usage) and [DONE].
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/choice_set.h"
#include "server/openai_response.h"

namespace nanovllm::server {

struct StreamOptions {
  bool include_usage = false;
  bool continuous_usage = false;
  bool with_logprobs = false;
};

class StreamWriter {
 public:
  StreamWriter(ResponseHeader header, size_t num_choices, StreamOptions options);

  // What was sent so far: pass to ChoiceSet::wait_newer so snapshots hold only the rest.
  const std::vector<size_t>* sent_text() const { return &sent_; }
  const std::vector<size_t>* sent_logprobs() const { return &sent_logprobs_; }
  uint64_t version() const { return version_; }  // of the latest snapshot seen
  // The events for what `s` adds (empty if nothing); once every choice finished, the last ones.
  std::string events(const ChoiceSnapshot& s);
  bool done() const { return done_; }

 private:
  ResponseHeader header_;
  StreamOptions options_;
  std::vector<size_t> sent_;           // bytes of each choice's text sent
  std::vector<size_t> sent_logprobs_;  // logprob entries of each choice sent
  std::vector<size_t> logprob_text_;   // bytes of those entries' tokens (text_offset)
  std::vector<int32_t> sent_tokens_;   // completion tokens reported (continuous usage)
  std::vector<bool> started_, ended_;  // first chunk (chat: the role) / finish chunk sent
  uint64_t version_ = 0;
  bool done_ = false;
};

}  // namespace nanovllm::server
