// Streaming detokenization: pieces never split a UTF-8 character and concatenate to decode(all).
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace nanovllm {
namespace {

const char* const kMultiByteText =
    "Emoji 😀🚀👨‍👩‍👧 and 中文字符, café naïve e\u0301, 한국어, العربية.\n  spaced   out\tend";

void expect_stream_equals_decode(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDecoder stream(tok, skip_special);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    EXPECT_TRUE(utf8::is_valid(piece)) << "piece splits a character";
    streamed += piece;
  }
  streamed += stream.finish();
  EXPECT_EQ(streamed, tok.decode(ids, skip_special));
}

TEST(IncrementalDecoder, Qwen3MultiByteTextEqualsFullDecode) {
  const Tokenizer& tok = test::cached_tokenizer(test::qwen3_dir());
  const auto ids = tok.encode(kMultiByteText, false);
  // The emoji are split over several byte-level tokens, so some pushes must hold text back.
  EXPECT_GT(ids.size(), 20u);
  expect_stream_equals_decode(tok, ids, true);
  expect_stream_equals_decode(tok, ids, false);
}

TEST(IncrementalDecoder, Qwen3HoldsBackHalfCharacters) {
  const Tokenizer& tok = test::cached_tokenizer(test::qwen3_dir());
  // "🦜" (4 bytes) is two byte-level tokens: 3 bytes then 1; "‍" (ZWJ, 3 bytes) is 2 then 1.
  const std::string parrot = "\xF0\x9F\xA6\x9C";
  const auto ids = tok.encode("a" + parrot + "\xE2\x80\x8D", false);
  ASSERT_EQ(ids.size(), 5u);
  IncrementalDecoder stream(tok);
  EXPECT_EQ(stream.push(ids[0]), "a");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), parrot);
  EXPECT_EQ(stream.push(ids[3]), "");
  EXPECT_EQ(stream.push(ids[4]), "\xE2\x80\x8D");
  EXPECT_EQ(stream.finish(), "");
  // An incomplete character at the very end comes out of finish() as U+FFFD, like decode().
  IncrementalDecoder cut(tok);
  EXPECT_EQ(cut.push(ids[1]), "");
  EXPECT_EQ(cut.finish(), tok.decode(std::vector<int32_t>{ids[1]}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{ids[1]}), "\xEF\xBF\xBD");
}

TEST(IncrementalDecoder, StoriesLeadingSpaceAndByteFallback) {
  const Tokenizer& tok = test::cached_tokenizer(test::stories_dir());
  const auto ids = tok.encode(std::string(" Lily saw ") + kMultiByteText, true);
  expect_stream_equals_decode(tok, ids, true);
  expect_stream_equals_decode(tok, ids, false);
  // A special token in the middle must not eat the next word's space when skipped.
  std::vector<int32_t> with_eos = tok.encode("one day", true);
  with_eos.push_back(2);
  const auto more = tok.encode("she ran", false);  // Prepend gives "▁she"
  with_eos.insert(with_eos.end(), more.begin(), more.end());
  expect_stream_equals_decode(tok, with_eos, true);
  EXPECT_EQ(tok.decode(with_eos, true), "one day she ran");
}

TEST(IncrementalDecoder, RandomTokenSequencesEqualFullDecode) {
  for (const auto& dir : {test::qwen3_dir(), test::stories_dir()}) {
    const Tokenizer& tok = test::cached_tokenizer(dir);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> any_id(0, tok.vocab_size() - 1);
    for (int round = 0; round < 20; ++round) {
      std::vector<int32_t> ids(1 + rng() % 40);
      for (int32_t& id : ids) id = any_id(rng);
      SCOPED_TRACE(dir.string() + " round " + std::to_string(round));
      expect_stream_equals_decode(tok, ids, true);
      expect_stream_equals_decode(tok, ids, false);
    }
  }
}

}  // namespace
}  // namespace nanovllm
