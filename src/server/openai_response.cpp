#include "server/openai_response.h"

namespace nanovllm::server {

using nlohmann::json;

namespace {

json finish_value(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

json header_json(const ResponseHeader& h, const char* object) {
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

}  // namespace

json logprobs_json(bool chat, const std::vector<LogprobEntry>& entries, size_t text_offset) {
  auto bytes = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
  };
  if (chat) {
    json content = json::array();
    for (const LogprobEntry& e : entries) {
      json top = json::array();
      for (const auto& [token, lp] : e.top) top.push_back({{"token", token}, {"logprob", lp}, {"bytes", bytes(token)}});
      content.push_back({{"token", e.token}, {"logprob", e.logprob}, {"bytes", bytes(e.token)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  for (const LogprobEntry& e : entries) {
    tokens.push_back(e.token);
    values.push_back(e.known ? json(e.logprob) : json(nullptr));
    json top = json::object();
    if (e.known) top[e.token] = e.logprob;  // the chosen token is always among them, as OpenAI has it
    for (const auto& [token, lp] : e.top) top[token] = lp;
    tops.push_back(e.known ? std::move(top) : json(nullptr));
    offsets.push_back(text_offset);
    text_offset += e.token.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json usage_json(const std::vector<ChoiceState>& choices) {
  int64_t prompt = 0, completion = 0;
  for (const ChoiceState& c : choices) {
    prompt += c.prompt_tokens;
    completion += c.completion_tokens;
  }
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

json response_json(const ResponseHeader& h, const std::vector<ChoiceState>& choices, bool with_logprobs) {
  json j = header_json(h, h.chat ? "chat.completion" : "text_completion");
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceState& c = choices[i];
    json choice{{"index", i},
                {"finish_reason", finish_value(c.finish_reason)},
                {"logprobs", with_logprobs ? logprobs_json(h.chat, c.logprobs, 0) : json(nullptr)}};
    if (h.chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    list.push_back(std::move(choice));
  }
  j["choices"] = std::move(list);
  j["usage"] = usage_json(choices);
  return j;
}

json chunk_json(const ResponseHeader& h, size_t index, const std::string& delta, bool first,
                const std::string& finish_reason) {
  json j = header_json(h, h.chat ? "chat.completion.chunk" : "text_completion");
  json choice{{"index", index}, {"finish_reason", finish_value(finish_reason)}, {"logprobs", nullptr}};
  if (h.chat) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.empty() || finish_reason.empty()) d["content"] = delta;
    choice["delta"] = std::move(d);
  } else {
    choice["text"] = delta;
  }
  j["choices"] = json::array({std::move(choice)});
  return j;
}

json usage_chunk_json(const ResponseHeader& h, const std::vector<ChoiceState>& choices) {
  json j = header_json(h, h.chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(choices);
  return j;
}

json error_json(int status, const std::string& message, const std::string& param) {
  const char* type = status == 404   ? "NotFoundError"
                     : status == 401 ? "AuthenticationError"
                     : status >= 500 ? "InternalServerError"
                                     : "BadRequestError";
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", status}}}};
}

std::string sse_event(const json& payload) {
  return "data: " + payload.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace nanovllm::server
