#pragma once
// A Tokenizer from a GGUF file's `tokenizer.ggml.*` metadata (llama.cpp's vocabulary format),
// built through the same TokenizerSpec as tokenizer.json:
//   "gpt2"  byte-level BPE: tokens + merges ("left right"), split regexes from tokenizer.ggml.pre;
//   "llama" SentencePiece BPE: tokens + scores (merges derived by merges_from_scores), <0xXX>
//           byte fallback, "▁" space prefix (tokenizer.ggml.add_space_prefix, default true).
// Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
// Control and unknown tokens become special added tokens, user-defined ones non-special added
// tokens (both matched in text before the model runs, as llama.cpp does). bos/eos/eot/eom ids,
// add_bos_token / add_eos_token and tokenizer.chat_template are carried over.
#include <filesystem>

#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace nanovllm {

// Throws nanovllm::Error naming the file and key when the metadata is missing or inconsistent
// (unknown tokenizer model or pre-tokenizer, array lengths that differ, ids out of range).
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& file);
Tokenizer tokenizer_from_gguf(const GgufFile& file);
Tokenizer tokenizer_from_gguf(const std::filesystem::path& path);

}  // namespace nanovllm
