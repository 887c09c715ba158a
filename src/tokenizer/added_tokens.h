#pragma once
// Finds added tokens (special or not) in text before any normalization or splitting, as HF's
// AddedVocabulary does: leftmost-longest match, honouring lstrip / rstrip / single_word.
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace nanovllm {

struct TextSegment {
  std::string_view text;  // a view into the input
  int32_t added_id = -1;  // id of the added token this segment is, or -1 for plain text
};

class AddedTokenMatcher {
 public:
  // Uses the tokens of `tokens` whose `normalized` flag equals `normalized`.
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized);
  bool empty() const { return tokens_.empty(); }
  // Splits `text` into plain segments and added-token segments, appended to `out`.
  void split(std::string_view text, std::vector<TextSegment>& out) const;

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<uint8_t, std::vector<size_t>> by_first_byte_;  // indices into tokens_
};

}  // namespace nanovllm
