#include "engine/gguf_tokenizer.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/pretokenizer_regex.h"

namespace nanovllm {
namespace {

// llama.cpp's llama_token_type values (tokenizer.ggml.token_type).
enum GgufTokenType : int64_t {
  kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

const char* const kSpaceMarker = "\xE2\x96\x81";  // "▁"

// An optional id key, checked against the vocabulary size.
std::optional<int32_t> token_id(const GgufFile& file, const std::string& key, size_t vocab_size) {
  const auto id = file.get_int(key);
  if (!id) return std::nullopt;
  // Some converters write -1 (or UINT32_MAX) for "no such token".
  if (*id < 0 || *id == 0xFFFFFFFFll) return std::nullopt;
  NANOVLLM_CHECK(*id < static_cast<int64_t>(vocab_size), file.source_name(), ": metadata '", key, "' = ", *id,
                 " is past the vocabulary (", vocab_size, " tokens)");
  return static_cast<int32_t>(*id);
}

void add_unique(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

// "left right" strings -> pairs; a merge must hold exactly one space.
std::vector<std::pair<std::string, std::string>> parse_merges(const GgufFile& file) {
  const auto merges = file.get_string_array("tokenizer.ggml.merges");
  NANOVLLM_CHECK(merges.has_value(), file.source_name(),
                 ": metadata 'tokenizer.ggml.merges' is missing (needed by tokenizer model gpt2)");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string& m = (*merges)[i];
    const size_t space = m.find(' ');
    NANOVLLM_CHECK(space != std::string::npos && space > 0 && space + 1 < m.size() &&
                       m.find(' ', space + 1) == std::string::npos,
                   file.source_name(), ": metadata 'tokenizer.ggml.merges[", i, "]' must be \"left right\", got \"",
                   m, "\"");
    out.emplace_back(m.substr(0, space), m.substr(space + 1));
  }
  return out;
}

void fill_byte_level(const GgufFile& file, TokenizerSpec& spec) {
  spec.model = TokenizerModelKind::kByteLevelBpe;
  spec.merges = parse_merges(file);
  const std::string pre = file.get_string("tokenizer.ggml.pre").value_or("default");
  try {
    spec.split_regexes = split_regexes_for_gguf_pre(pre);
  } catch (const Error& e) {
    throw_error(file.source_name(), ": metadata 'tokenizer.ggml.pre': ", e.what());
  }
  // Llama 3's tokenizer takes a word that is itself a token whole (llama.cpp: ignore_merges).
  spec.ignore_merges = pre == "llama3" || pre == "llama-bpe";
}

void fill_sentencepiece(const GgufFile& file, TokenizerSpec& spec) {
  spec.model = TokenizerModelKind::kSentencePieceBpe;
  if (file.has("tokenizer.ggml.merges")) {
    spec.merges = parse_merges(file);
  } else {
    const auto scores = file.get_float_array("tokenizer.ggml.scores");
    NANOVLLM_CHECK(scores.has_value(), file.source_name(),
                   ": metadata 'tokenizer.ggml.scores' is missing (needed by tokenizer model llama)");
    NANOVLLM_CHECK(scores->size() == spec.vocab.size(), file.source_name(), ": metadata 'tokenizer.ggml.scores' has ",
                   scores->size(), " entries, expected one per token (", spec.vocab.size(), ")");
    spec.merges = merges_from_scores(spec.vocab, std::vector<float>(scores->begin(), scores->end()));
  }
  // llama.cpp puts " " before every run of text that starts the prompt or follows a special
  // token, then escapes spaces to "▁": HF's Metaspace with prepend "always", no split.
  const bool add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  MetaspaceSpec m;
  m.replacement = kSpaceMarker;
  m.prepend = add_space_prefix ? MetaspaceSpec::Prepend::kAlways : MetaspaceSpec::Prepend::kNever;
  m.split = false;
  spec.metaspace = m;
  spec.byte_fallback = true;
  spec.fuse_unk = true;
  spec.decoder_strip_leading_space = add_space_prefix;
  spec.decoder_byte_fallback = true;
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& file) {
  TokenizerSpec spec;
  spec.source = file.source_name();
  const std::string& src = spec.source;

  const auto model = file.get_string("tokenizer.ggml.model");
  NANOVLLM_CHECK(model.has_value(), src, ": metadata 'tokenizer.ggml.model' is missing (no tokenizer in this file)");
  NANOVLLM_CHECK(*model == "gpt2" || *model == "llama", src, ": metadata 'tokenizer.ggml.model' = '", *model,
                 "' is not supported (expected gpt2 or llama)");
  auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  NANOVLLM_CHECK(tokens.has_value() && !tokens->empty(), src, ": metadata 'tokenizer.ggml.tokens' is missing or empty");
  spec.vocab = std::move(*tokens);
  const size_t n = spec.vocab.size();

  if (*model == "gpt2") {
    fill_byte_level(file, spec);
  } else {
    fill_sentencepiece(file, spec);
  }

  // Control, unknown and user-defined tokens are matched in the text before BPE runs.
  if (const auto types = file.get_int_array("tokenizer.ggml.token_type")) {
    NANOVLLM_CHECK(types->size() == n, src, ": metadata 'tokenizer.ggml.token_type' has ", types->size(),
                   " entries, expected one per token (", n, ")");
    for (size_t id = 0; id < n; ++id) {
      const int64_t t = (*types)[id];
      NANOVLLM_CHECK(t >= kNormal && t <= kByte, src, ": metadata 'tokenizer.ggml.token_type[", id, "]' = ", t,
                     " is not a token type (1..6)");
      if (t != kControl && t != kUnknown && t != kUserDefined) continue;
      if (spec.vocab[id].empty()) continue;  // nothing to match
      AddedToken a;
      a.id = static_cast<int32_t>(id);
      a.content = spec.vocab[id];
      a.special = t != kUserDefined;
      a.normalized = false;
      spec.added_tokens.push_back(std::move(a));
    }
  }

  spec.unk_id = token_id(file, "tokenizer.ggml.unknown_token_id", n);
  if (*model == "gpt2") spec.unk_id.reset();  // byte-level BPE never produces unknown tokens
  spec.bos_id = token_id(file, "tokenizer.ggml.bos_token_id", n);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (const auto id = token_id(file, key, n)) add_unique(spec.eos_ids, *id);

  // llama.cpp's defaults: SentencePiece vocabularies add BOS, byte-level ones do not.
  const bool add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(*model == "llama");
  const bool add_eos = file.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  if (add_bos) {
    NANOVLLM_CHECK(spec.bos_id.has_value(), src,
                   ": metadata 'tokenizer.ggml.add_bos_token' is true but 'tokenizer.ggml.bos_token_id' is missing");
    spec.prefix_ids.push_back(*spec.bos_id);
  }
  if (add_eos) {
    const auto eos = token_id(file, "tokenizer.ggml.eos_token_id", n);
    NANOVLLM_CHECK(eos.has_value(), src,
                   ": metadata 'tokenizer.ggml.add_eos_token' is true but 'tokenizer.ggml.eos_token_id' is missing");
    spec.suffix_ids.push_back(*eos);
  }

  spec.chat_template = file.get_string("tokenizer.chat_template").value_or("");
  return spec;
}

Tokenizer tokenizer_from_gguf(const GgufFile& file) { return Tokenizer(tokenizer_spec_from_gguf(file)); }

Tokenizer tokenizer_from_gguf(const std::filesystem::path& path) { return tokenizer_from_gguf(GgufFile(path)); }

}  // namespace nanovllm
