#pragma once
// GPT-2's reversible byte <-> printable character mapping used by byte-level BPE vocabularies.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nanovllm {

class ByteLevelMap {
 public:
  ByteLevelMap();
  // Every byte of `bytes` replaced by its printable character (UTF-8).
  std::string encode(std::string_view bytes) const;
  // The byte a printable character stands for, or nullopt when it is not one of the 256.
  std::optional<uint8_t> byte_of(uint32_t code_point) const;
  // A vocab token back to raw bytes; a token with a char outside the map is returned unchanged
  // (added tokens such as "<|im_start|>"), as HF's ByteLevel decoder does.
  std::string decode_token(std::string_view token) const;

 private:
  std::array<std::string, 256> byte_to_char_;  // UTF-8 text of the char for each byte
  std::array<int16_t, 324> char_to_byte_;      // code point (< 324) -> byte, -1 if none
};

}  // namespace nanovllm
