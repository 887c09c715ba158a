#pragma once
// Chat formatting chosen from the shape of a model's Jinja chat template (no Jinja engine):
// ChatML, ChatML with Qwen3's thinking rules, Llama 3, or plain text.
#include <span>
#include <string>

namespace nanovllm {

struct ChatMessage;

enum class ChatFormat { kPlain, kChatMl, kQwen3, kLlama3 };

struct ChatFormatSpec {
  ChatFormat format = ChatFormat::kPlain;
  std::string default_system;    // ChatML: system text the template adds when none is given
  bool llama31_system = false;   // Llama 3.1+: "Cutting Knowledge Date" system header always
  std::string bos_text;          // Llama 3: written at the start (the template's bos_token)
};

ChatFormatSpec detect_chat_format(const std::string& template_text, const std::string& bos_text);

std::string format_chat(const ChatFormatSpec& format, std::span<const ChatMessage> messages,
                        bool add_generation_prompt, bool enable_thinking);

}  // namespace nanovllm
