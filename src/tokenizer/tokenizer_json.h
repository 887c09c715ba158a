#pragma once
// Reads Hugging Face tokenizer files into a TokenizerSpec.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json_reader.h"
#include "tokenizer/tokenizer_spec.h"

namespace nanovllm {

// tokenizer.json content -> spec. `source` names the file in error messages.
TokenizerSpec parse_tokenizer_json(const nlohmann::json& root, const std::string& source);
// The same from a streamed file (read_tokenizer_json), the fast path of load_tokenizer_dir.
TokenizerSpec parse_tokenizer_json(RawTokenizerJson raw, const std::string& source);

// tokenizer_config.json: bos_token / eos_token, add_bos_token / add_eos_token, chat_template.
void apply_tokenizer_config(TokenizerSpec& spec, const nlohmann::json& config, const std::string& source);

// generation_config.json: eos_token_id (int or list) added to the spec's eos ids.
void apply_generation_config(TokenizerSpec& spec, const nlohmann::json& config, const std::string& source);

// Reads a JSON file; a missing file or invalid JSON is a nanovllm::Error naming the file.
nlohmann::json read_json_file(const std::filesystem::path& file);

// dir/tokenizer.json (required) plus tokenizer_config.json and generation_config.json if present.
TokenizerSpec load_tokenizer_dir(const std::filesystem::path& dir);

}  // namespace nanovllm
