#pragma once
// Hugging Face tokenizer.json BPE tokenizers (byte-level and SentencePiece with byte fallback),
// chat formatting, and streaming detokenization. Thread-safe for concurrent encode/decode.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace nanovllm {

struct ChatMessage {
  std::string role;
  std::string content;
};

class Tokenizer {
 public:
  // Throws nanovllm::Error when the spec is inconsistent (merge of unknown tokens, bad regex).
  explicit Tokenizer(TokenizerSpec spec);
  // dir holds tokenizer.json and optionally tokenizer_config.json (chat_template, bos/eos,
  // add_bos_token) and generation_config.json (more eos ids).
  static Tokenizer from_dir(const std::filesystem::path& dir);

  // Invalid UTF-8 in `text` is replaced by U+FFFD first (as Python's errors="replace").
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Ids without a token (past the vocab, e.g. padded embedding rows) are skipped, as HF does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // highest token id + 1, added tokens included
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_token_id() const;
  std::vector<int32_t> eos_token_ids() const;
  const TokenizerSpec& spec() const;

  bool has_chat_template() const;
  // ChatML (<|im_start|>: Qwen, SmolLM2; Qwen3's thinking rules when its template has them),
  // Llama 3 (<|start_header_id|>), else plain text. The result already holds any BOS the
  // template writes: encode it with add_special_tokens = false.
  std::string apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt = true,
                                  bool enable_thinking = true) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Streaming detokenizer: push ids one by one and get the text they complete. The pieces
// concatenate to decode(all ids); no piece ends inside a UTF-8 character.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tok, bool skip_special_tokens = true);
  // Starts after `context_ids` (e.g. the prompt) without emitting them, so the first new token
  // keeps its leading space as it would in decode(context + new).
  IncrementalDecoder(const Tokenizer& tok, std::span<const int32_t> context_ids, bool skip_special_tokens = true);

  std::string push(int32_t id);  // newly completed text, possibly ""
  std::string finish();          // whatever is still held back

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // kept ids (skipped specials are not kept)
  size_t prefix_offset_ = 0;  // window start: decode from here so context-dependent rules agree
  size_t read_offset_ = 0;    // ids before this have been emitted
};

}  // namespace nanovllm
