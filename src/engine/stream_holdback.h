#pragma once
// How much of a growing completion may be reported as final text: all of it once the request
// finished; before that, all but the last (longest stop string - 1) bytes, which a stop string
// matched by a later token could still cut (vLLM holds back the same), and never the first half
// of a UTF-8 character.
#include <cstddef>
#include <string>
#include <vector>

namespace nanovllm {

size_t longest_stop_length(const std::vector<std::string>& stops);
size_t reportable_text_length(const std::string& text, bool finished, size_t longest_stop);

}  // namespace nanovllm
