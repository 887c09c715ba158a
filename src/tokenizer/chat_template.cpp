#include "tokenizer/chat_template.h"

#include <regex>

#include "tokenizer/tokenizer.h"

namespace nanovllm {
namespace {

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

std::string strip_chars(std::string_view s, std::string_view chars, bool left, bool right) {
  size_t begin = 0, end = s.size();
  if (left) while (begin < end && chars.find(s[begin]) != std::string_view::npos) ++begin;
  if (right) while (end > begin && chars.find(s[end - 1]) != std::string_view::npos) --end;
  return std::string(s.substr(begin, end - begin));
}

constexpr std::string_view kJinjaTrim = " \t\n\r";  // Jinja's trim / Python's strip()

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, std::string_view p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Qwen3's template, transcribed (no tools): thinking blocks are kept only for assistant turns
// after the last real user query.
std::string format_qwen3(std::span<const ChatMessage> messages, bool add_generation_prompt, bool enable_thinking) {
  std::string out;
  const int64_t n = static_cast<int64_t>(messages.size());
  if (n > 0 && messages[0].role == "system") out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  int64_t last_query = n - 1;
  for (int64_t i = n - 1; i >= 0; --i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" && !(starts_with(m.content, "<tool_response>") && ends_with(m.content, "</tool_response>"))) {
      last_query = i;
      break;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      std::string content = m.content;
      std::string reasoning;
      if (const size_t close = m.content.find("</think>"); close != std::string::npos) {
        content = strip_chars(std::string_view(m.content).substr(m.content.rfind("</think>") + 8), "\n", true, false);
        const std::string before = strip_chars(std::string_view(m.content).substr(0, close), "\n", false, true);
        const size_t open = before.rfind("<think>");
        reasoning = strip_chars(open == std::string::npos ? before : before.substr(open + 7), "\n", true, false);
      }
      if (i > last_query && (i == n - 1 || !reasoning.empty())) {
        out += "<|im_start|>" + m.role + "\n<think>\n" + strip_chars(reasoning, "\n", true, true) + "\n</think>\n\n" +
               strip_chars(content, "\n", true, false);
      } else {
        out += "<|im_start|>" + m.role + "\n" + content;
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i == n - 1 || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string format_chatml(const ChatFormatSpec& f, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  if (!f.default_system.empty() && (messages.empty() || messages[0].role != "system"))
    out += "<|im_start|>system\n" + f.default_system + "<|im_end|>\n";
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string format_llama3(const ChatFormatSpec& f, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  const auto header = [](const std::string& role) { return "<|start_header_id|>" + role + "<|end_header_id|>\n\n"; };
  std::string out = f.bos_text;
  size_t first = 0;
  if (f.llama31_system) {
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = strip_chars(messages[0].content, kJinjaTrim, true, true);
      first = 1;
    }
    out += header("system") + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system +
           "<|eot_id|>";
  }
  for (size_t i = first; i < messages.size(); ++i)
    out += header(messages[i].role) + strip_chars(messages[i].content, kJinjaTrim, true, true) + "<|eot_id|>";
  if (add_generation_prompt) out += header("assistant");
  return out;
}

std::string format_plain(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  if (messages.size() == 1 && messages[0].role == "user") return messages[0].content;
  std::string out;
  for (const ChatMessage& m : messages) out += m.role + ": " + m.content + "\n";
  if (add_generation_prompt) out += "assistant:";
  return out;
}

}  // namespace

ChatFormatSpec detect_chat_format(const std::string& t, const std::string& bos_text) {
  ChatFormatSpec f;
  if (contains(t, "<|im_start|>")) {
    f.format = contains(t, "enable_thinking") || contains(t, "reasoning_content") ? ChatFormat::kQwen3
                                                                                 : ChatFormat::kChatMl;
    // A default system turn written as a literal, e.g. '<|im_start|>system\nYou are ...<|im_end|>\n'
    // (the "\n" is an escape in tokenizer_config.json templates, a real newline in GGUF ones).
    static const std::regex kDefaultSystem(R"(<\|im_start\|>system(?:\\n|\n)([^'"{}<]+)<\|im_end\|>)");
    std::smatch match;
    if (f.format == ChatFormat::kChatMl && std::regex_search(t, match, kDefaultSystem)) f.default_system = match[1];
  } else if (contains(t, "<|start_header_id|>")) {
    f.format = ChatFormat::kLlama3;
    f.llama31_system = contains(t, "Cutting Knowledge Date");
    f.bos_text = bos_text;
  }
  return f;
}

std::string format_chat(const ChatFormatSpec& f, std::span<const ChatMessage> messages, bool add_generation_prompt,
                        bool enable_thinking) {
  switch (f.format) {
    case ChatFormat::kQwen3: return format_qwen3(messages, add_generation_prompt, enable_thinking);
    case ChatFormat::kChatMl: return format_chatml(f, messages, add_generation_prompt);
    case ChatFormat::kLlama3: return format_llama3(f, messages, add_generation_prompt);
    case ChatFormat::kPlain: break;
  }
  return format_plain(messages, add_generation_prompt);
}

}  // namespace nanovllm
