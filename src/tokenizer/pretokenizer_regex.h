#pragma once
// Split regexes of the pre-tokenizers we support, by the names GGUF files use in
// `tokenizer.ggml.pre` (llama.cpp's names).
#include <string>
#include <string_view>
#include <vector>

namespace nanovllm {

// GPT-2's regex (also what HF's ByteLevel pre-tokenizer applies when use_regex is true).
extern const char* const kGpt2SplitRegex;
extern const char* const kLlama3SplitRegex;
extern const char* const kQwen2SplitRegex;

// The split regexes (applied in order, "Isolated") for a GGUF pre-tokenizer name:
// "qwen2"; "llama3"/"llama-bpe"; "smollm" (single digits, then GPT-2); "gpt2"/"default" (GPT-2).
// Throws nanovllm::Error for an unknown name.
std::vector<std::string> split_regexes_for_gguf_pre(std::string_view pre_name);

}  // namespace nanovllm
