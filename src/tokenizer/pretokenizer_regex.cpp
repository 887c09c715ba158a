#include "tokenizer/pretokenizer_regex.h"

#include "core/error.h"

namespace nanovllm {

const char* const kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> split_regexes_for_gguf_pre(std::string_view pre_name) {
  if (pre_name == "qwen2") return {kQwen2SplitRegex};
  if (pre_name == "llama3" || pre_name == "llama-bpe") return {kLlama3SplitRegex};
  if (pre_name == "smollm") return {R"(\p{N})", kGpt2SplitRegex};
  if (pre_name == "gpt2" || pre_name == "default") return {kGpt2SplitRegex};
  throw_error("tokenizer.ggml.pre: unsupported pre-tokenizer '", pre_name,
              "' (expected qwen2, llama3, llama-bpe, smollm, gpt2 or default)");
}

}  // namespace nanovllm
