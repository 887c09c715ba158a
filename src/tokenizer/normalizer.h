#pragma once
// Applies a list of normalizer steps (NFC, Prepend "▁", Replace " " -> "▁", ...) to text.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace nanovllm {

// `text` must be valid UTF-8.
std::string normalize_text(std::string_view text, const std::vector<NormalizerStep>& steps);

}  // namespace nanovllm
