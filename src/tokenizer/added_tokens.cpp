#include "tokenizer/added_tokens.h"

#include <cctype>

#include "tokenizer/utf8.h"

namespace nanovllm {
namespace {

// Word characters for single_word, as HF's regex \w (alphanumeric or '_').
bool is_word_byte_before(std::string_view text, size_t pos) {
  if (pos == 0) return false;
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  const unsigned char c = static_cast<unsigned char>(text[start]);
  return c >= 0x80 || std::isalnum(c) || c == '_';
}

bool is_word_byte_at(std::string_view text, size_t pos) {
  if (pos >= text.size()) return false;
  const unsigned char c = static_cast<unsigned char>(text[pos]);
  return c >= 0x80 || std::isalnum(c) || c == '_';
}

// Length of whitespace ending at `end` (scanning left) / starting at `begin` (scanning right).
size_t whitespace_before(std::string_view text, size_t end, size_t floor) {
  size_t pos = end;
  while (pos > floor) {
    size_t start = pos - 1;
    while (start > floor && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!utf8::is_whitespace(utf8::next_code_point(text, i))) break;
    pos = start;
  }
  return end - pos;
}

size_t whitespace_after(std::string_view text, size_t begin) {
  size_t pos = begin;
  while (pos < text.size()) {
    size_t i = pos;
    if (!utf8::is_whitespace(utf8::next_code_point(text, i))) break;
    pos = i;
  }
  return pos - begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized) {
  for (const AddedToken& t : tokens) {
    if (t.normalized != normalized || t.content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(t.content[0])].push_back(tokens_.size());
    tokens_.push_back(t);
  }
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSegment>& out) const {
  size_t plain_start = 0;  // start of the pending plain segment
  size_t pos = 0;
  while (pos < text.size()) {
    const auto bucket = by_first_byte_.find(static_cast<uint8_t>(text[pos]));
    const AddedToken* best = nullptr;
    if (bucket != by_first_byte_.end()) {
      for (size_t index : bucket->second) {
        const AddedToken& t = tokens_[index];
        if (text.compare(pos, t.content.size(), t.content) != 0) continue;
        if (t.single_word && (is_word_byte_before(text, pos) || is_word_byte_at(text, pos + t.content.size())))
          continue;
        if (best == nullptr || t.content.size() > best->content.size()) best = &t;
      }
    }
    if (best == nullptr) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + best->content.size();
    if (best->lstrip) begin -= whitespace_before(text, begin, plain_start);
    if (best->rstrip) end += whitespace_after(text, end);
    if (begin > plain_start) out.push_back({text.substr(plain_start, begin - plain_start), -1});
    out.push_back({text.substr(begin, end - begin), best->id});
    pos = plain_start = end;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace nanovllm
