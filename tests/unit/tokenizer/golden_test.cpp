// Encode / decode / chat goldens written by tests/fixtures/tokenizer/make_goldens.py with
// Hugging Face tokenizers and transformers.
#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace nanovllm {
namespace {

using test::cached_tokenizer;

void check_encode_goldens(const std::string& name) {
  const auto goldens = test::load_json(test::fixture_dir() / "encode_goldens.json");
  const auto& entry = goldens.at("tokenizers").at(name);
  const Tokenizer& tok = cached_tokenizer(test::shared_dir() / entry.at("dir").get<std::string>());
  ASSERT_GE(entry.at("cases").size(), 20u);
  for (const auto& c : entry.at("cases")) {
    const std::string text = c.at("text");
    SCOPED_TRACE(name + " text: " + text);
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text, true), ids);
    EXPECT_EQ(tok.encode(text, false), c.at("ids_no_special").get<std::vector<int32_t>>());
    EXPECT_EQ(tok.decode(ids, false), c.at("decoded").get<std::string>());
    EXPECT_EQ(tok.decode(ids, true), c.at("decoded_skip_special").get<std::string>());
  }
}

TEST(TokenizerGolden, Qwen3EncodeDecodeMatchesHuggingFace) { check_encode_goldens("qwen3"); }
TEST(TokenizerGolden, Stories260KEncodeDecodeMatchesHuggingFace) { check_encode_goldens("stories260K"); }

TEST(TokenizerGolden, Qwen3ChatTemplateMatchesTransformers) {
  const auto goldens = test::load_json(test::fixture_dir() / "chat_goldens.json");
  const Tokenizer& tok = cached_tokenizer(test::shared_dir() / goldens.at("dir").get<std::string>());
  ASSERT_TRUE(tok.has_chat_template());
  ASSERT_GE(goldens.at("cases").size(), 12u);
  for (const auto& c : goldens.at("cases")) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    const bool gen = c.at("add_generation_prompt"), think = c.at("enable_thinking");
    SCOPED_TRACE(c.at("messages").dump() + " gen=" + std::to_string(gen) + " think=" + std::to_string(think));
    const std::string text = tok.apply_chat_template(messages, gen, think);
    EXPECT_EQ(text, c.at("text").get<std::string>());
    EXPECT_EQ(tok.encode(text, false), c.at("ids").get<std::vector<int32_t>>());
  }
}

TEST(TokenizerGolden, Qwen3SpecialIdsFromConfig) {
  const Tokenizer& tok = cached_tokenizer(test::qwen3_dir());
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_FALSE(tok.bos_token_id().has_value());
  EXPECT_EQ(tok.eos_token_ids(), std::vector<int32_t>{151645});  // <|im_end|>
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.token_to_id("Hello"), 9707);
  EXPECT_TRUE(tok.is_special(151643));
  EXPECT_FALSE(tok.is_special(151667));  // <think> is an added token but not special
  EXPECT_FALSE(tok.is_special(9707));
  // Ids past the tokens (Qwen3's embedding has 151936 rows) decode to nothing, as in HF.
  const std::vector<int32_t> ids = {9707, 151900, 1879};
  EXPECT_EQ(tok.decode(ids), "Hello world");
}

TEST(TokenizerGolden, StoriesChatFallsBackToPlainText) {
  const Tokenizer& tok = cached_tokenizer(test::stories_dir());
  EXPECT_FALSE(tok.has_chat_template());
  const std::vector<ChatMessage> one = {{"user", "Once upon a time"}};
  EXPECT_EQ(tok.apply_chat_template(one), "Once upon a time");
  const std::vector<ChatMessage> two = {{"system", "Be kind."}, {"user", "Hi"}};
  EXPECT_EQ(tok.apply_chat_template(two), "system: Be kind.\nuser: Hi\nassistant:");
  EXPECT_EQ(tok.apply_chat_template(two, false), "system: Be kind.\nuser: Hi\n");
}

}  // namespace
}  // namespace nanovllm
