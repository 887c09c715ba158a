#pragma once
// Shared helpers for the tokenizer tests: fixture paths and JSON loading.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace nanovllm::test {

inline std::filesystem::path shared_dir() { return NANOVLLM_SHARED_DIR; }
inline std::filesystem::path fixture_dir() { return std::filesystem::path(NANOVLLM_SOURCE_DIR) / "tests/fixtures/tokenizer"; }
inline std::filesystem::path qwen3_dir() { return shared_dir() / "tokenizers/qwen3"; }
inline std::filesystem::path stories_dir() { return shared_dir() / "models/stories260K"; }

inline nlohmann::json load_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

// Loading Qwen3's 150k vocab once per test binary keeps the suite fast.
inline const Tokenizer& cached_tokenizer(const std::filesystem::path& dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[dir.string()];
  if (!slot) slot = std::make_unique<Tokenizer>(Tokenizer::from_dir(dir));
  return *slot;
}

}  // namespace nanovllm::test
