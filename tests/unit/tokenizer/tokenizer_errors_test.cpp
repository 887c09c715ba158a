// Bad tokenizer files give a nanovllm::Error that names the file and the field.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "tokenizer_test_util.h"

namespace nanovllm {
namespace {

class TokenizerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nanovllm_tok_err_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& content) { std::ofstream(dir_ / name) << content; }
  // Expects from_dir to throw an Error whose message contains every part.
  void expect_error(std::initializer_list<std::string> parts) {
    try {
      Tokenizer::from_dir(dir_);
      FAIL() << "no error thrown";
    } catch (const Error& e) {
      for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
  std::filesystem::path dir_;
};

const char* const kMinimal = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "decoder": {"type": "ByteLevel"}})";

TEST_F(TokenizerErrors, MinimalFileWorks) {
  write("tokenizer.json", kMinimal);
  const Tokenizer tok = Tokenizer::from_dir(dir_);
  EXPECT_EQ(tok.encode("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(tok.encode("aba"), (std::vector<int32_t>{2, 0}));
}

TEST_F(TokenizerErrors, MissingFile) { expect_error({"tokenizer.json", "not found"}); }

TEST_F(TokenizerErrors, InvalidJson) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {)");
  expect_error({"tokenizer.json", "invalid JSON"});
}

TEST_F(TokenizerErrors, UnsupportedModelType) {
  write("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  expect_error({"tokenizer.json", "model.type", "Unigram"});
}

TEST_F(TokenizerErrors, MissingVocab) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "merges": []}})");
  expect_error({"tokenizer.json", "model.vocab", "missing"});
}

TEST_F(TokenizerErrors, MergeOfUnknownToken) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]}})");
  expect_error({"tokenizer.json", "model.merges[0]", "'z'"});
}

TEST_F(TokenizerErrors, MalformedMergeString) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["abc"]}})");
  expect_error({"tokenizer.json", "model.merges[0]"});
}

TEST_F(TokenizerErrors, WrongFieldType) {
  write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})");
  expect_error({"tokenizer.json", "model.vocab"});
}

TEST_F(TokenizerErrors, UnsupportedNormalizer) {
  write("tokenizer.json", R"({"normalizer": {"type": "BertNormalizer"},
    "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  expect_error({"tokenizer.json", "normalizer.type", "BertNormalizer"});
}

TEST_F(TokenizerErrors, BadSplitRegex) {
  write("tokenizer.json", R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"},
    "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  expect_error({"tokenizer.json", "regex"});
}

TEST_F(TokenizerErrors, UnknownEosTokenInConfig) {
  write("tokenizer.json", kMinimal);
  write("tokenizer_config.json", R"({"eos_token": "<nope>"})");
  expect_error({"tokenizer_config.json", "eos_token", "<nope>"});
}

TEST_F(TokenizerErrors, MalformedConfig) {
  write("tokenizer.json", kMinimal);
  write("tokenizer_config.json", "[1, 2");
  expect_error({"tokenizer_config.json", "invalid JSON"});
}

}  // namespace
}  // namespace nanovllm
