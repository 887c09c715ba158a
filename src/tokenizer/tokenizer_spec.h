#pragma once
// The whole description of a tokenizer as plain data. tokenizer.json is parsed into it
// (tokenizer_json.h); a GGUF reader fills the same struct from `tokenizer.ggml.*` metadata
// (pretokenizer_regex.h maps `tokenizer.ggml.pre` names to split regexes, and
// merges_from_scores() derives SentencePiece merges when a file carries scores instead).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nanovllm {

// Only BPE is supported; the two flavours differ in pre-tokenization and decoding.
enum class TokenizerModelKind {
  kByteLevelBpe,      // GPT-2 / Qwen2/3 / Llama 3 / SmolLM2: bytes mapped to printable chars
  kSentencePieceBpe,  // Llama 2 / stories260K: "▁" for spaces, <0xXX> byte fallback tokens
};

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;       // skipped by decode(skip_special_tokens=true)
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matched when not inside a word
  bool normalized = false;   // matched on normalized text instead of raw text
};

// One normalizer step, applied in order to each piece of text between added tokens.
struct NormalizerStep {
  enum class Kind { kNfc, kNfkc, kNfd, kNfkd, kLowercase, kPrepend, kReplace };
  Kind kind = Kind::kNfc;
  std::string pattern;  // kReplace: literal text to replace
  std::string content;  // kPrepend: prefix; kReplace: replacement
};

// SentencePiece-style space handling done as a pre-tokenizer (HF's Metaspace).
struct MetaspaceSpec {
  std::string replacement = "\xE2\x96\x81";  // "▁"
  enum class Prepend { kNever, kFirst, kAlways } prepend = Prepend::kAlways;
  bool split = false;  // split into words, each starting with the replacement
};

struct TokenizerSpec {
  TokenizerModelKind model = TokenizerModelKind::kByteLevelBpe;
  std::string source;  // file name used in error messages

  std::vector<std::string> vocab;                              // id -> token text (model space)
  std::vector<std::pair<std::string, std::string>> merges;     // in rank order, rank 0 first
  std::vector<AddedToken> added_tokens;                        // ids may lie past vocab.size()

  std::vector<NormalizerStep> normalizer;
  // Regex splits applied one after the other with HF's "Isolated" behaviour (matches and the
  // gaps between them both become pieces). PCRE2 syntax with UTF + Unicode properties.
  std::vector<std::string> split_regexes;
  bool byte_level_add_prefix_space = false;  // byte-level only: " " before text without one
  std::optional<MetaspaceSpec> metaspace;

  bool byte_fallback = false;   // unknown chars become <0xXX> tokens
  bool ignore_merges = false;   // a word that is itself in the vocab is taken whole (Llama 3)
  bool fuse_unk = false;
  std::optional<int32_t> unk_id;

  // Decoder (SentencePiece only): drop one leading space of the decoded text; turn runs of
  // <0xXX> tokens back into bytes (HF's ByteFallback decoder; a Metaspace-only decoder leaves them).
  bool decoder_strip_leading_space = false;
  bool decoder_byte_fallback = true;

  // Post-processing when add_special_tokens is true: ids put before / after the sequence.
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;

  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;
  std::string chat_template;  // Jinja text; only its shape is used to pick a chat format
};

// SentencePiece files that carry scores instead of merges (GGUF "llama"): every split of a
// piece into two vocab pieces becomes a merge, ranked by the merged piece's score (highest
// first), ties by the ids of the two halves, as HF's SentencePiece converter does.
std::vector<std::pair<std::string, std::string>> merges_from_scores(
    const std::vector<std::string>& vocab, const std::vector<float>& scores);

}  // namespace nanovllm
