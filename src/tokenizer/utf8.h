#pragma once
// Small UTF-8 helpers shared by the tokenizer pieces.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nanovllm::utf8 {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid there
// (bad lead byte, truncated, overlong, surrogate or past U+10FFFF).
size_t valid_sequence_length(std::string_view s, size_t i);

// Replaces every maximal invalid subpart by U+FFFD, exactly as Rust's String::from_utf8_lossy
// and Python's bytes.decode(errors="replace") do.
std::string to_valid_lossy(std::string_view bytes);

bool is_valid(std::string_view s);

// Appends the UTF-8 encoding of a code point.
void append_code_point(std::string& out, uint32_t cp);

// Decodes the (valid) sequence at s[i]; advances i.
uint32_t next_code_point(std::string_view s, size_t& i);

// True when the text ends with U+FFFD (an incomplete or invalid byte run was replaced).
bool ends_with_replacement(std::string_view s);

// Unicode whitespace as Rust's char::is_whitespace (used for lstrip/rstrip of added tokens).
bool is_whitespace(uint32_t cp);

}  // namespace nanovllm::utf8
