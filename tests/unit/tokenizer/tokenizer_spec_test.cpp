// Building a tokenizer from a plain TokenizerSpec, as a GGUF reader will.
#include <gtest/gtest.h>

#include <chrono>

#include "core/error.h"
#include "tokenizer/pretokenizer_regex.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer_test_util.h"

namespace nanovllm {
namespace {

const std::vector<std::string> kTexts = {
    "Hello world, it's 2024!", "  spaces\n\n\ttabs  ", "数字 12345 and ÜBER", "emoji 😀👍🏽", "I'LL don't"};

TEST(TokenizerSpec, GgufStyleQwen2SpecMatchesTokenizerJson) {
  const Tokenizer& reference = test::cached_tokenizer(test::qwen3_dir());
  // What a GGUF reader knows: tokens, merges, token types, ids, and the pre-tokenizer name.
  TokenizerSpec spec;
  spec.source = "model.gguf";
  spec.model = TokenizerModelKind::kByteLevelBpe;
  spec.vocab = reference.spec().vocab;
  spec.merges = reference.spec().merges;
  for (const AddedToken& t : reference.spec().added_tokens) spec.added_tokens.push_back({t.id, t.content, t.special});
  spec.normalizer = {{NormalizerStep::Kind::kNfc, "", ""}};
  spec.split_regexes = split_regexes_for_gguf_pre("qwen2");
  spec.eos_ids = {151645};
  const Tokenizer tok(std::move(spec));
  for (const std::string& text : kTexts) EXPECT_EQ(tok.encode(text), reference.encode(text)) << text;
  EXPECT_EQ(tok.encode("<|im_start|>x"), reference.encode("<|im_start|>x"));
}

TEST(TokenizerSpec, GgufPreNames) {
  EXPECT_EQ(split_regexes_for_gguf_pre("qwen2"), std::vector<std::string>{kQwen2SplitRegex});
  EXPECT_EQ(split_regexes_for_gguf_pre("llama-bpe"), std::vector<std::string>{kLlama3SplitRegex});
  EXPECT_EQ(split_regexes_for_gguf_pre("llama3"), std::vector<std::string>{kLlama3SplitRegex});
  EXPECT_EQ(split_regexes_for_gguf_pre("smollm").size(), 2u);
  EXPECT_EQ(split_regexes_for_gguf_pre("gpt2"), std::vector<std::string>{kGpt2SplitRegex});
  EXPECT_EQ(split_regexes_for_gguf_pre("default"), std::vector<std::string>{kGpt2SplitRegex});
  EXPECT_THROW(split_regexes_for_gguf_pre("no-such-pre"), Error);
  // The Qwen2 regex of the GGUF table is the one in Qwen3's tokenizer.json.
  const Tokenizer& qwen = test::cached_tokenizer(test::qwen3_dir());
  EXPECT_EQ(qwen.spec().split_regexes, std::vector<std::string>{kQwen2SplitRegex});
}

TEST(TokenizerSpec, SentencePieceMergesFromScoresReproduceTokenizerJson) {
  // GGUF "llama" files carry scores, not merges. stories260K's pieces are ordered by score.
  const Tokenizer& reference = test::cached_tokenizer(test::stories_dir());
  TokenizerSpec spec = reference.spec();
  std::vector<float> scores(spec.vocab.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  spec.merges = merges_from_scores(spec.vocab, scores);
  EXPECT_FALSE(spec.merges.empty());
  const Tokenizer tok(std::move(spec));
  const auto reference_json = test::load_json(test::stories_dir() / "reference.json");
  for (const auto& r : reference_json)
    EXPECT_EQ(tok.encode(r.at("prompt").get<std::string>()), r.at("prompt_ids").get<std::vector<int32_t>>());
  for (const std::string& text : kTexts) EXPECT_EQ(tok.encode(text), reference.encode(text)) << text;
  EXPECT_EQ(tok.encode("Once upon a time there was a little girl named Lily"),
            reference.encode("Once upon a time there was a little girl named Lily"));
}

TEST(TokenizerSpec, Qwen3LoadsFastAndEncodesFast) {
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::from_dir(test::qwen3_dir());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string text;
  for (int i = 0; i < 200; ++i) text += "The quick brown fox jumps over the lazy dog " + std::to_string(i) + ". 你好世界！\n";
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text);
  const double encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("qwen3 load %.3f s, encode %zu bytes -> %zu ids in %.4f s\n", load_s, text.size(), ids.size(), encode_s);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_LT(load_s, 5.0);  // generous for sanitizer builds; ~0.3-0.5 s in Release
  EXPECT_LT(encode_s, 1.0);
}

}  // namespace
}  // namespace nanovllm
