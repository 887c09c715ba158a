#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace nanovllm {
namespace {
// How many context tokens to re-decode with each new token: enough for a multi-byte character
// split over byte tokens and for decoders that look at the first token.
constexpr size_t kContextWindow = 6;

// SentencePiece byte-fallback tokens decode as one run: the whole run is text only if it is
// valid UTF-8, else every byte becomes U+FFFD. A run can still change while it is open.
bool is_byte_fallback_token(const Tokenizer& tok, int32_t id) {
  if (tok.spec().model != TokenizerModelKind::kSentencePieceBpe || !tok.spec().decoder_byte_fallback) return false;
  const auto token = tok.id_to_token(id);
  return token && token->size() == 6 && token->starts_with("<0x") && token->back() == '>';
}
}  // namespace

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(&tok), skip_special_(skip_special_tokens) {}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tok, std::span<const int32_t> context_ids,
                                       bool skip_special_tokens)
    : tok_(&tok), skip_special_(skip_special_tokens) {
  for (int32_t id : context_ids)
    if (!(skip_special_ && tok.is_special(id)) && tok.id_to_token(id)) ids_.push_back(id);
  read_offset_ = ids_.size();
  prefix_offset_ = ids_.size() > kContextWindow ? ids_.size() - kContextWindow : 0;
}

std::string IncrementalDecoder::push(int32_t id) {
  // Skipped specials and unknown ids are left out of the window: a window must start at a token
  // that shows in the full decode, or SentencePiece's leading-space strip would differ.
  if ((skip_special_ && tok_->is_special(id)) || !tok_->id_to_token(id)) return "";
  ids_.push_back(id);
  if (is_byte_fallback_token(*tok_, id)) return "";  // the run may continue
  const std::span<const int32_t> all(ids_);
  const std::string prefix_text = tok_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  const std::string new_text = tok_->decode(all.subspan(prefix_offset_), skip_special_);
  // Hold back while the newest bytes do not yet form a whole character (decode shows U+FFFD).
  if (new_text.size() <= prefix_text.size() || utf8::ends_with_replacement(new_text) ||
      new_text.compare(0, prefix_text.size(), prefix_text) != 0)
    return "";
  std::string piece = new_text.substr(prefix_text.size());
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return piece;
}

std::string IncrementalDecoder::finish() {
  const std::span<const int32_t> all(ids_);
  const std::string prefix_text = tok_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  const std::string new_text = tok_->decode(all.subspan(prefix_offset_), skip_special_);
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size() || new_text.compare(0, prefix_text.size(), prefix_text) != 0) return "";
  return new_text.substr(prefix_text.size());
}

}  // namespace nanovllm
