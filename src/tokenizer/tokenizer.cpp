#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/regex_splitter.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace nanovllm {

namespace {

// Added tokens flagged `normalized` are matched in normalized text, so their content is
// normalized too (HF does the same: "the end" becomes "▁the▁end" under Prepend/Replace).
std::vector<AddedToken> normalized_contents(const TokenizerSpec& spec) {
  std::vector<AddedToken> tokens;
  for (AddedToken t : spec.added_tokens) {
    if (!t.normalized) continue;
    t.content = normalize_text(t.content, spec.normalizer);
    tokens.push_back(std::move(t));
  }
  return tokens;
}

}  // namespace

struct Tokenizer::Impl {
  TokenizerSpec spec;
  BpeModel bpe;
  AddedTokenMatcher raw_added;         // added tokens with normalized == false
  std::vector<AddedToken> normalized_added_contents;  // normalized == true, content normalized
  AddedTokenMatcher normalized_added;  // added tokens with normalized == true
  std::vector<RegexSplitter> splitters;
  ByteLevelMap byte_map;
  ChatFormatSpec chat;
  std::vector<std::string_view> id_to_token;  // [vocab_size] views into spec ("" where no token)
  std::vector<uint8_t> exists;           // [vocab_size] 1 where id_to_token is a real token
  std::vector<uint8_t> special;          // [vocab_size] 1 for special added tokens
  std::unordered_map<std::string, int32_t> added_ids;

  explicit Impl(TokenizerSpec s)
      : spec(std::move(s)),
        bpe(spec),
        raw_added(spec.added_tokens, false),
        normalized_added_contents(normalized_contents(spec)),
        normalized_added(normalized_added_contents, true) {
    for (size_t i = 0; i < spec.split_regexes.size(); ++i)
      splitters.emplace_back(spec.split_regexes[i], spec.source + ": pre_tokenizer regex " + std::to_string(i));
    size_t size = spec.vocab.size();
    for (const AddedToken& t : spec.added_tokens) size = std::max(size, static_cast<size_t>(t.id) + 1);
    id_to_token.assign(size, std::string_view());
    exists.assign(size, 0);
    special.assign(size, 0);
    for (size_t i = 0; i < spec.vocab.size(); ++i) {
      id_to_token[i] = spec.vocab[i];
      exists[i] = 1;
    }
    for (const AddedToken& t : normalized_added_contents) id_to_token[t.id] = t.content;
    for (const AddedToken& t : spec.added_tokens) {
      if (!t.normalized) id_to_token[t.id] = t.content;
      exists[t.id] = 1;
      special[t.id] = t.special ? 1 : 0;
      added_ids[t.content] = t.id;
    }
    const auto check_id = [&](int32_t id, const char* what) {
      NANOVLLM_CHECK(id >= 0 && static_cast<size_t>(id) < size && exists[id], spec.source, ": ", what, " id ", id,
                     " is not a token id (vocab size ", size, ")");
    };
    for (int32_t id : spec.prefix_ids) check_id(id, "post_processor");
    for (int32_t id : spec.suffix_ids) check_id(id, "post_processor");
    for (int32_t id : spec.eos_ids) check_id(id, "eos");
    if (spec.bos_id) check_id(*spec.bos_id, "bos");
    chat = detect_chat_format(spec.chat_template,
                              spec.bos_id ? std::string(id_to_token[*spec.bos_id]) : std::string());
  }

  void encode_plain(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const;
  void encode_words(std::string_view normalized, bool at_text_start, std::vector<int32_t>& out) const;
  std::string decode_tokens(const std::vector<std::string_view>& tokens) const;
};

namespace {

// SentencePiece Metaspace: spaces -> replacement, optional prefix, optional split before each
// replacement (HF's MergedWithNext).
std::vector<std::string> metaspace_words(std::string_view text, const MetaspaceSpec& m, bool at_text_start) {
  std::string s;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] == ' ') s += m.replacement;
    else s.push_back(text[pos]);
  }
  const bool prepend = m.prepend == MetaspaceSpec::Prepend::kAlways ||
                       (m.prepend == MetaspaceSpec::Prepend::kFirst && at_text_start);
  if (prepend && !s.empty() && s.compare(0, m.replacement.size(), m.replacement) != 0) s.insert(0, m.replacement);
  if (!m.split || m.replacement.empty()) return {s};
  std::vector<std::string> words;
  size_t start = 0;
  for (size_t hit; (hit = s.find(m.replacement, start + 1)) != std::string::npos && start < s.size(); start = hit)
    words.push_back(s.substr(start, hit - start));
  if (start < s.size()) words.push_back(s.substr(start));
  return words;
}

}  // namespace

void Tokenizer::Impl::encode_words(std::string_view normalized, bool at_text_start, std::vector<int32_t>& out) const {
  std::vector<std::string> metaspace;
  std::vector<std::string_view> pieces;  // views into `normalized` or `metaspace`
  std::string prefixed;
  if (spec.metaspace) {
    metaspace = metaspace_words(normalized, *spec.metaspace, at_text_start);
    for (const std::string& w : metaspace) pieces.push_back(w);
  } else if (spec.model == TokenizerModelKind::kByteLevelBpe && spec.byte_level_add_prefix_space &&
             !normalized.empty() && normalized.front() != ' ') {
    prefixed.reserve(normalized.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(normalized);
    pieces.push_back(prefixed);
  } else {
    pieces.push_back(normalized);
  }
  for (const RegexSplitter& splitter : splitters) {
    std::vector<std::string_view> next;
    for (std::string_view p : pieces) splitter.split(p, next);
    pieces.swap(next);
  }
  for (std::string_view piece : pieces) {
    if (spec.model == TokenizerModelKind::kByteLevelBpe) bpe.encode_word(byte_map.encode(piece), out);
    else bpe.encode_word(piece, out);
  }
}

void Tokenizer::Impl::encode_plain(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const {
  const std::string normalized = normalize_text(text, spec.normalizer);
  if (normalized_added.empty()) {
    encode_words(normalized, at_text_start, out);
    return;
  }
  std::vector<TextSegment> segments;
  normalized_added.split(normalized, segments);
  for (const TextSegment& seg : segments) {
    if (seg.added_id >= 0) out.push_back(seg.added_id);
    else encode_words(seg.text, at_text_start && seg.text.data() == normalized.data(), out);
  }
}

std::string Tokenizer::Impl::decode_tokens(const std::vector<std::string_view>& tokens) const {
  if (spec.model == TokenizerModelKind::kByteLevelBpe) {
    std::string bytes;
    for (std::string_view t : tokens) bytes += byte_map.decode_token(t);
    return utf8::to_valid_lossy(bytes);
  }
  // SentencePiece: "▁" -> " ", runs of <0xXX> tokens -> bytes (each byte of an invalid run
  // becomes U+FFFD), then one leading space stripped.
  const std::string marker = spec.metaspace ? spec.metaspace->replacement : std::string("\xE2\x96\x81");
  std::string text;
  std::string pending_bytes;
  const auto flush = [&] {
    if (pending_bytes.empty()) return;
    if (utf8::is_valid(pending_bytes)) text += pending_bytes;
    else for (size_t i = 0; i < pending_bytes.size(); ++i) text += "\xEF\xBF\xBD";
    pending_bytes.clear();
  };
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::string_view t : tokens) {
    if (spec.decoder_byte_fallback && t.size() == 6 && t.substr(0, 3) == "<0x" && t[5] == '>' && hex(t[3]) >= 0 && hex(t[4]) >= 0) {
      pending_bytes.push_back(static_cast<char>(hex(t[3]) * 16 + hex(t[4])));
      continue;
    }
    flush();
    size_t pos = 0;
    for (size_t hit; (hit = t.find(marker, pos)) != std::string_view::npos; pos = hit + marker.size()) {
      text.append(t.substr(pos, hit - pos));
      text.push_back(' ');
    }
    text.append(t.substr(pos));
  }
  flush();
  if (spec.decoder_strip_leading_space && !text.empty() && text.front() == ' ') text.erase(0, 1);
  return text;
}

Tokenizer::Tokenizer(TokenizerSpec spec) : impl_(std::make_shared<const Impl>(std::move(spec))) {}

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) { return Tokenizer(load_tokenizer_dir(dir)); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& im = *impl_;
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::to_valid_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = im.spec.prefix_ids;
  std::vector<TextSegment> segments;
  im.raw_added.split(text, segments);
  for (const TextSegment& seg : segments) {
    if (seg.added_id >= 0) ids.push_back(seg.added_id);
    else im.encode_plain(seg.text, seg.text.data() == text.data(), ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), im.spec.suffix_ids.begin(), im.spec.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string_view> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= im.exists.size() || !im.exists[id]) continue;
    if (skip_special_tokens && im.special[id]) continue;
    tokens.push_back(im.id_to_token[id]);
  }
  return im.decode_tokens(tokens);
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_ids.find(std::string(token)); it != impl_->added_ids.end()) return it->second;
  return impl_->bpe.id_of(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !impl_->exists[id]) return std::nullopt;
  return std::string(impl_->id_to_token[id]);
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id] != 0;
}

std::optional<int32_t> Tokenizer::bos_token_id() const { return impl_->spec.bos_id; }
std::vector<int32_t> Tokenizer::eos_token_ids() const { return impl_->spec.eos_ids; }
const TokenizerSpec& Tokenizer::spec() const { return impl_->spec; }
bool Tokenizer::has_chat_template() const { return !impl_->spec.chat_template.empty(); }

std::string Tokenizer::apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                           bool enable_thinking) const {
  return format_chat(impl_->chat, messages, add_generation_prompt, enable_thinking);
}

}  // namespace nanovllm
