#pragma once
// A PCRE2 regex (UTF + Unicode properties, JIT when available) that splits text the way HF's
// Split pre-tokenizer does with behaviour "Isolated": every match and every gap between
// matches becomes its own piece.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nanovllm {

class RegexSplitter {
 public:
  // Throws nanovllm::Error naming `where` when the pattern does not compile.
  RegexSplitter(const std::string& pattern, const std::string& where);
  // Appends the pieces of `text` (valid UTF-8) to `out`, as views into `text`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Code;
  std::shared_ptr<Code> code_;
};

}  // namespace nanovllm
