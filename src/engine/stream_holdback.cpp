#include "engine/stream_holdback.h"

#include <algorithm>

namespace nanovllm {

size_t longest_stop_length(const std::vector<std::string>& stops) {
  size_t n = 0;
  for (const std::string& s : stops) n = std::max(n, s.size());
  return n;
}

size_t reportable_text_length(const std::string& text, bool finished, size_t longest_stop) {
  if (finished || longest_stop <= 1) return text.size();
  const size_t hold = longest_stop - 1;
  size_t n = text.size() > hold ? text.size() - hold : 0;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // a continuation byte
  return n;
}

}  // namespace nanovllm
