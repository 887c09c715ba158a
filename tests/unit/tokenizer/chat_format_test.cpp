// Chat formats picked from template text. Qwen3's format is checked against transformers in
// golden_test.cpp; these pin the ChatML and Llama 3 shapes from their published templates.
#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace nanovllm {
namespace {

const std::vector<ChatMessage> kConversation = {{"user", " Hi there \n"}, {"assistant", "Hello."}, {"user", "Bye"}};

TEST(ChatFormat, ChatMlWithDefaultSystemLikeSmolLM2) {
  const std::string tmpl =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
      "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const ChatFormatSpec f = detect_chat_format(tmpl, "");
  ASSERT_EQ(f.format, ChatFormat::kChatMl);
  EXPECT_EQ(f.default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(format_chat(f, kConversation, true, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\n Hi there \n<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  const std::vector<ChatMessage> with_system = {{"system", "S"}, {"user", "U"}};
  EXPECT_EQ(format_chat(f, with_system, false, true), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
}

TEST(ChatFormat, Llama3TrimsContentAndWritesBos) {
  const std::string tmpl =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
      "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
  const ChatFormatSpec f = detect_chat_format(tmpl, "<|begin_of_text|>");
  ASSERT_EQ(f.format, ChatFormat::kLlama3);
  EXPECT_FALSE(f.llama31_system);
  EXPECT_EQ(format_chat(f, kConversation, true, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, Llama31AddsKnowledgeDateSystemHeader) {
  const ChatFormatSpec f =
      detect_chat_format("<|start_header_id|>system ... Cutting Knowledge Date: December 2023", "<|begin_of_text|>");
  ASSERT_TRUE(f.llama31_system);
  const std::vector<ChatMessage> messages = {{"system", "Be brief. "}, {"user", "Hi"}};
  EXPECT_EQ(format_chat(f, messages, true, true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, NoTemplateIsPlainText) {
  const ChatFormatSpec f = detect_chat_format("", "<s>");
  ASSERT_EQ(f.format, ChatFormat::kPlain);
  EXPECT_EQ(format_chat(f, kConversation, true, true), "user:  Hi there \n\nassistant: Hello.\nuser: Bye\nassistant:");
}

}  // namespace
}  // namespace nanovllm
