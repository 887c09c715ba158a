#include "server/stream_writer.h"

#include <utility>

namespace nanovllm::server {

using nlohmann::json;

StreamWriter::StreamWriter(ResponseHeader header, size_t num_choices, StreamOptions options)
    : header_(std::move(header)),
      options_(options),
      sent_(num_choices, 0),
      sent_logprobs_(num_choices, 0),
      logprob_text_(num_choices, 0),
      sent_tokens_(num_choices, 0),
      started_(num_choices, false),
      ended_(num_choices, false) {}

std::string StreamWriter::events(const ChoiceSnapshot& s) {
  if (done_) return "";
  version_ = s.version;
  if (s.error) {
    done_ = true;
    return sse_event(error_json(s.error_status, *s.error)) + "data: [DONE]\n\n";
  }
  std::string out;
  for (size_t i = 0; i < s.choices.size() && i < sent_.size(); ++i) {
    const ChoiceState& c = s.choices[i];  // c.text, c.logprobs: what was not sent yet
    const bool more_tokens = options_.continuous_usage && c.completion_tokens > sent_tokens_[i];
    if (!c.text.empty() || !c.logprobs.empty() || more_tokens || !started_[i]) {
      json chunk = chunk_json(header_, i, c.text, !started_[i], "");
      if (options_.with_logprobs && !c.logprobs.empty()) {
        chunk["choices"][0]["logprobs"] = logprobs_json(header_.chat, c.logprobs, logprob_text_[i]);
        for (const LogprobEntry& e : c.logprobs) logprob_text_[i] += e.token.size();
      }
      if (options_.continuous_usage) chunk["usage"] = usage_json({c});
      out += sse_event(chunk);
      sent_[i] = c.text_offset + c.text.size();
      sent_logprobs_[i] = c.logprobs_offset + c.logprobs.size();
      sent_tokens_[i] = c.completion_tokens;
      started_[i] = true;
    }
    if (c.finished && !ended_[i]) {
      json chunk = chunk_json(header_, i, "", false, c.finish_reason);
      if (options_.continuous_usage) chunk["usage"] = usage_json({c});
      out += sse_event(chunk);
      ended_[i] = true;
    }
  }
  if (s.all_finished()) {
    if (options_.include_usage) out += sse_event(usage_chunk_json(header_, s.choices));
    out += "data: [DONE]\n\n";
    done_ = true;
  }
  return out;
}

}  // namespace nanovllm::server
