#pragma once
// OpenAI-style response bodies: whole responses, server-sent-event chunks for streaming, errors.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/choice_set.h"

namespace nanovllm::server {

// What every response of one request shares.
struct ResponseHeader {
  std::string id;     // "cmpl-N" / "chatcmpl-N"
  int64_t created = 0;  // Unix seconds
  std::string model;
  bool chat = false;
};

nlohmann::json usage_json(const std::vector<ChoiceState>& choices);
// The whole response of a finished request (text_completion or chat.completion).
nlohmann::json response_json(const ResponseHeader& h, const std::vector<ChoiceState>& choices,
                             bool with_logprobs = false);
// One streamed chunk: a text delta (and for chat the role, on the first chunk of a choice), or
// the choice's finish reason when finish_reason is not empty.
nlohmann::json chunk_json(const ResponseHeader& h, size_t index, const std::string& delta,
                          bool first, const std::string& finish_reason);
// The "logprobs" of a choice (or of a chunk: its new tokens): completions' legacy arrays (tokens,
// token_logprobs, top_logprobs, text_offset from `text_offset`) or chat's "content" list.
nlohmann::json logprobs_json(bool chat, const std::vector<LogprobEntry>& entries, size_t text_offset);
// The stream's last chunk when stream_options.include_usage is set: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseHeader& h, const std::vector<ChoiceState>& choices);
// {"error": {...}} as the OpenAI API shapes it; param empty: null.
nlohmann::json error_json(int status, const std::string& message, const std::string& param = "");
// One server-sent event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& payload);

}  // namespace nanovllm::server
