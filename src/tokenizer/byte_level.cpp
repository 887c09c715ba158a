#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace nanovllm {

ByteLevelMap::ByteLevelMap() {
  char_to_byte_.fill(-1);
  int next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const int cp = printable ? b : next_extra++;
    utf8::append_code_point(byte_to_char_[b], static_cast<uint32_t>(cp));
    char_to_byte_[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelMap::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_char_[static_cast<uint8_t>(c)];
  return out;
}

std::optional<uint8_t> ByteLevelMap::byte_of(uint32_t code_point) const {
  if (code_point >= char_to_byte_.size() || char_to_byte_[code_point] < 0) return std::nullopt;
  return static_cast<uint8_t>(char_to_byte_[code_point]);
}

std::string ByteLevelMap::decode_token(std::string_view token) const {
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const size_t n = utf8::valid_sequence_length(token, i);
    if (n == 0) return std::string(token);
    size_t j = i;
    const auto b = byte_of(utf8::next_code_point(token, j));
    if (!b) return std::string(token);
    out.push_back(static_cast<char>(*b));
    i += n;
  }
  return out;
}

}  // namespace nanovllm
