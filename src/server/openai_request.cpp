#include "server/openai_request.h"

#include <cmath>
#include <limits>

namespace nanovllm::server {
namespace {

using nlohmann::json;

constexpr int64_t kMaxChoices = 128;  // choices of one prompt ("n")

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw RequestError(400, param, message);
}

std::string type_name(const json& v) { return v.is_null() ? "null" : v.type_name(); }

// A number as the client wrote it (std::to_string would print -1 as -1.000000).
std::string shown(double v) { return json(v).dump(); }

json parse_object(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    bad("", std::string("request body: not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) bad("", "request body: expected a JSON object, got " + type_name(j));
  return j;
}

// The field's value when present and not null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool boolean(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, std::string("'") + name + "' must be a boolean, got " + type_name(*v));
  return v->get<bool>();
}

std::optional<double> number(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(name, std::string("'") + name + "' must be a number, got " + type_name(*v));
  return v->get<double>();
}

std::optional<int64_t> integer(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer())
    bad(name, std::string("'") + name + "' must be an integer, got " + type_name(*v));
  return v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : v->get<int64_t>();
}

std::vector<int32_t> token_ids(const json& v, const std::string& param) {
  std::vector<int32_t> ids;
  for (const json& id : v) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max())
      bad(param, "'" + param + "' must hold token ids (integers >= 0), got " + id.dump());
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

// OpenAI options the engine does not implement: refused when set to anything but their neutral
// value, rather than silently ignored.
void refuse_unsupported(const json& body) {
  auto refuse_unless = [&](const char* name, auto neutral) {
    const json* v = field(body, name);
    if (v && *v != json(neutral))
      bad(name, std::string("'") + name + "' is not supported by this server (only " +
                    json(neutral).dump() + ")");
  };
  refuse_unless("best_of", 1);
  refuse_unless("presence_penalty", 0);
  refuse_unless("frequency_penalty", 0);
  refuse_unless("repetition_penalty", 1);
  if (const json* v = field(body, "logit_bias"); v && !v->empty())
    bad("logit_bias", "'logit_bias' is not supported by this server");
  if (const json* v = field(body, "tools"); v && !v->empty())
    bad("tools", "'tools' (function calling) is not supported by this server");
}

// Completions: "logprobs": N (0-20, the N most likely tokens too). Chat: "logprobs": true, with
// "top_logprobs": N.
void parse_logprobs(const json& body, GenerationRequest& r) {
  const int32_t most = SamplingParams::kMaxLogprobs;
  auto in_range = [&](const char* name, int64_t n) {
    if (n < 0 || n > most)
      bad(name, std::string("'") + name + "' must be in [0, " + std::to_string(most) + "], got " + std::to_string(n));
    return int32_t(n);
  };
  if (!r.chat) {
    if (auto n = integer(body, "logprobs")) r.sampling.logprobs = in_range("logprobs", *n);
    r.echo = boolean(body, "echo", false);
    if (r.echo && r.sampling.logprobs >= 0) r.sampling.prompt_logprobs = r.sampling.logprobs;
    return;
  }
  if (boolean(body, "echo", false)) bad("echo", "'echo' is not supported by this server's chat route (only false)");
  const bool wanted = boolean(body, "logprobs", false);
  const std::optional<int64_t> top = integer(body, "top_logprobs");
  if (top && !wanted) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  if (wanted) r.sampling.logprobs = top ? in_range("top_logprobs", *top) : 0;
}

void parse_common(const json& body, GenerationRequest& r, const char* max_tokens_name) {
  refuse_unsupported(body);
  if (const json* v = field(body, "model")) {
    if (!v->is_string()) bad("model", "'model' must be a string, got " + type_name(*v));
    r.model = v->get<std::string>();
  }
  SamplingParams& s = r.sampling;
  // Chat's newer name first, then the older max_tokens that clients still send.
  if (!field(body, max_tokens_name)) max_tokens_name = "max_tokens";
  std::optional<int64_t> max_tokens = integer(body, max_tokens_name);
  if (max_tokens) {
    if (*max_tokens < 1 || *max_tokens > std::numeric_limits<int32_t>::max())
      bad(max_tokens_name, std::string("'") + max_tokens_name + "' must be >= 1, got " +
                               std::to_string(*max_tokens));
    s.max_tokens = int32_t(*max_tokens);
    r.max_tokens_given = true;
  }
  if (auto n = integer(body, "n")) {
    if (*n < 1 || *n > kMaxChoices)
      bad("n", "'n' must be in [1, " + std::to_string(kMaxChoices) + "], got " + std::to_string(*n));
    r.n = int32_t(*n);
  }
  if (auto t = number(body, "temperature")) {
    if (*t < 0 || !std::isfinite(float(*t)))
      bad("temperature", "'temperature' must be a finite number >= 0, got " + shown(*t));
    s.temperature = float(*t);
    r.temperature_given = true;
  }
  if (auto p = number(body, "top_p")) {
    if (!(*p > 0 && *p <= 1)) bad("top_p", "'top_p' must be in (0, 1], got " + shown(*p));
    s.top_p = float(*p);
    r.top_p_given = true;
  }
  if (auto k = integer(body, "top_k")) {
    if (*k < -1 || *k > std::numeric_limits<int32_t>::max())
      bad("top_k", "'top_k' must be -1 (all tokens) or >= 0, got " + std::to_string(*k));
    s.top_k = int32_t(*k);
    r.top_k_given = true;
  }
  if (auto seed = integer(body, "seed")) {
    if (*seed < 0) bad("seed", "'seed' must be >= 0, got " + std::to_string(*seed));
    s.seed = uint64_t(*seed);
  }
  if (const json* v = field(body, "stop")) {
    if (v->is_string()) {
      s.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const json& e : *v) {
        if (!e.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        s.stop.push_back(e.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of strings, got " + type_name(*v));
    }
    for (const std::string& stop : s.stop)
      if (stop.empty()) bad("stop", "'stop' strings must not be empty");
  }
  if (const json* v = field(body, "stop_token_ids")) {
    if (!v->is_array()) bad("stop_token_ids", "'stop_token_ids' must be an array of token ids");
    s.stop_token_ids = token_ids(*v, "stop_token_ids");
  }
  parse_logprobs(body, r);
  s.ignore_eos = boolean(body, "ignore_eos", false);
  r.stream = boolean(body, "stream", false);
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed with 'stream': true");
    r.include_usage = boolean(*v, "include_usage", false);
    r.continuous_usage = boolean(*v, "continuous_usage_stats", false);
  }
}

std::vector<PromptInput> completion_prompts(const json& body) {
  const json* p = field(body, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  std::vector<PromptInput> prompts;
  if (p->is_string()) {
    prompts.emplace_back(p->get<std::string>());
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    prompts.emplace_back(token_ids(*p, "prompt"));
  } else if (p->is_array() && !p->empty()) {
    for (const json& e : *p) {
      if (e.is_string()) prompts.emplace_back(e.get<std::string>());
      else if (e.is_array()) prompts.emplace_back(token_ids(e, "prompt"));
      else bad("prompt", "'prompt' array entries must be strings or arrays of token ids");
    }
  } else {
    bad("prompt", "'prompt' must be a string, an array of strings, an array of token ids or an "
                  "array of such arrays, got " + (p->is_array() ? std::string("an empty array") : type_name(*p)));
  }
  for (const PromptInput& in : prompts) {
    const bool empty = std::holds_alternative<std::string>(in) ? std::get<std::string>(in).empty()
                                                                : std::get<std::vector<int32_t>>(in).empty();
    if (empty) bad("prompt", "'prompt' must not be empty");
  }
  return prompts;
}

// content: a string, or an array of {"type": "text", "text": ...} parts (joined).
std::string message_content(const json& content, size_t i) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  if (!content.is_array()) bad(param, "'" + param + "' must be a string or an array of text parts");
  std::string text;
  for (const json& part : content) {
    const json* type = part.is_object() ? field(part, "type") : nullptr;
    if (!type || *type != "text" || !part.contains("text") || !part["text"].is_string())
      bad(param, "'" + param + "' parts must be {\"type\": \"text\", \"text\": string}; only text is supported");
    text += part["text"].get<std::string>();
  }
  return text;
}

ChatMessages chat_messages(const json& body) {
  const json* m = field(body, "messages");
  if (!m) bad("messages", "'messages' is required");
  if (!m->is_array() || m->empty()) bad("messages", "'messages' must be a non-empty array of messages");
  ChatMessages messages;
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) bad(param, "'" + param + "' must be an object with 'role' and 'content'");
    const json* role = field(msg, "role");
    if (!role || !role->is_string() || role->get<std::string>().empty())
      bad(param + ".role", "'" + param + ".role' must be a non-empty string");
    const json* content = field(msg, "content");
    messages.emplace_back(role->get<std::string>(), content ? message_content(*content, i) : std::string());
  }
  return messages;
}

}  // namespace

GenerationRequest parse_completion_request(const std::string& body) {
  const json j = parse_object(body);
  GenerationRequest r;
  parse_common(j, r, "max_tokens");
  r.prompts = completion_prompts(j);
  return r;
}

GenerationRequest parse_chat_request(const std::string& body) {
  const json j = parse_object(body);
  GenerationRequest r;
  r.chat = true;
  parse_common(j, r, "max_completion_tokens");
  r.prompts.emplace_back(chat_messages(j));
  if (const json* kw = field(j, "chat_template_kwargs")) {
    if (!kw->is_object()) bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.enable_thinking = boolean(*kw, "enable_thinking", true);
  }
  return r;
}

TokenizeRequest parse_tokenize_request(const std::string& body) {
  const json j = parse_object(body);
  TokenizeRequest r;
  if (const json* p = field(j, "prompt")) {
    if (!p->is_string()) bad("prompt", "'prompt' must be a string, got " + type_name(*p));
    r.prompt = p->get<std::string>();
    r.add_special_tokens = boolean(j, "add_special_tokens", true);
    return r;
  }
  if (!field(j, "messages")) bad("prompt", "give 'prompt' (a string) or 'messages'");
  r.messages = chat_messages(j);
  r.add_generation_prompt = boolean(j, "add_generation_prompt", true);
  if (const json* kw = field(j, "chat_template_kwargs")) {
    if (!kw->is_object()) bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.enable_thinking = boolean(*kw, "enable_thinking", true);
  }
  return r;
}

std::vector<int32_t> parse_detokenize_request(const std::string& body) {
  const json j = parse_object(body);
  const json* t = field(j, "tokens");
  if (!t || !t->is_array()) bad("tokens", "'tokens' must be an array of token ids");
  return token_ids(*t, "tokens");
}

}  // namespace nanovllm::server
