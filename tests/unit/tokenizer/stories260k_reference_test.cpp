// stories260K's reference.json (llama2.c's own tokenizer and decoder) against ours.
#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace nanovllm {
namespace {

TEST(Stories260K, PromptIdsAndCompletionTextMatchReference) {
  const Tokenizer& tok = test::cached_tokenizer(test::stories_dir());
  EXPECT_EQ(tok.bos_token_id(), 1);
  EXPECT_EQ(tok.eos_token_ids(), std::vector<int32_t>{2});
  const auto reference = test::load_json(test::stories_dir() / "reference.json");
  ASSERT_FALSE(reference.empty());
  for (const auto& r : reference) {
    const std::string prompt = r.at("prompt");
    const auto prompt_ids = r.at("prompt_ids").get<std::vector<int32_t>>();
    const auto output_ids = r.at("output_ids").get<std::vector<int32_t>>();
    const std::string completion = r.at("completion_text");
    SCOPED_TRACE(prompt);
    EXPECT_EQ(tok.encode(prompt, true), prompt_ids);

    std::vector<int32_t> all = prompt_ids;
    all.insert(all.end(), output_ids.begin(), output_ids.end());
    EXPECT_EQ(tok.decode(all, true), prompt + completion);

    // Streaming after the prompt keeps the first token's leading space.
    IncrementalDecoder stream(tok, prompt_ids, true);
    std::string streamed;
    for (int32_t id : output_ids) streamed += stream.push(id);
    streamed += stream.finish();
    EXPECT_EQ(streamed, completion);
  }
}

TEST(Stories260K, ZooEncodesWithBos) {
  const Tokenizer& tok = test::cached_tokenizer(test::stories_dir());
  EXPECT_EQ(tok.encode("Zoo", true), (std::vector<int32_t>{1, 410, 469, 347}));
  EXPECT_EQ(tok.encode("Zoo", false), (std::vector<int32_t>{410, 469, 347}));
}

TEST(Stories260K, ByteFallbackRoundTripsText) {
  const Tokenizer& tok = test::cached_tokenizer(test::stories_dir());
  const std::string text = "naïve 中文 😀";  // none of these chars are in the 512-token vocab
  const auto ids = tok.encode(text, false);
  int byte_tokens = 0;
  for (int32_t id : ids) byte_tokens += tok.id_to_token(id)->starts_with("<0x") ? 1 : 0;
  EXPECT_GE(byte_tokens, 2 + 6 + 4);
  EXPECT_EQ(tok.decode(ids), text);
}

}  // namespace
}  // namespace nanovllm
