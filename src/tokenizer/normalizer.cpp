#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace nanovllm {
namespace {

std::string unicode_map(std::string_view text, int options) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  NANOVLLM_CHECK(n >= 0, "tokenizer normalizer: ", utf8proc_errmsg(n));
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::string lowercase(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) utf8::append_code_point(out, static_cast<uint32_t>(utf8proc_tolower(
                                                                        static_cast<utf8proc_int32_t>(utf8::next_code_point(text, i)))));
  return out;
}

std::string replace_all(std::string_view text, const std::string& pattern, const std::string& content) {
  if (pattern.empty()) return std::string(text);
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(pattern, pos)) != std::string_view::npos; pos = hit + pattern.size()) {
    out.append(text.substr(pos, hit - pos));
    out.append(content);
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

std::string normalize_text(std::string_view text, const std::vector<NormalizerStep>& steps) {
  std::string s(text);
  using K = NormalizerStep::Kind;
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case K::kNfc: s = unicode_map(s, UTF8PROC_COMPOSE); break;
      case K::kNfkc: s = unicode_map(s, UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
      case K::kNfd: s = unicode_map(s, UTF8PROC_DECOMPOSE); break;
      case K::kNfkd: s = unicode_map(s, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
      case K::kLowercase: s = lowercase(s); break;
      case K::kPrepend:
        if (!s.empty()) s.insert(0, step.content);  // HF prepends only to non-empty text
        break;
      case K::kReplace: s = replace_all(s, step.pattern, step.content); break;
    }
  }
  return s;
}

}  // namespace nanovllm
