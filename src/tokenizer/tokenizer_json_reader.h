#pragma once
// Streams tokenizer.json with a SAX parser: model.vocab and model.merges (the bulk of the
// file: 150k entries each for Qwen3) go straight into vectors; the rest becomes a small DOM.
// About 3x faster than building the whole DOM.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanovllm {

struct RawTokenizerJson {
  nlohmann::json root;  // everything except model.vocab and model.merges
  std::optional<std::vector<std::pair<std::string, int64_t>>> vocab;        // token, id
  std::optional<std::vector<std::pair<std::string, std::string>>> merges;  // in rank order
};

// Errors (missing file, invalid JSON, a vocab id that is not an integer, a malformed merge)
// are nanovllm::Error naming the file and field.
RawTokenizerJson read_tokenizer_json(const std::filesystem::path& file);

}  // namespace nanovllm
