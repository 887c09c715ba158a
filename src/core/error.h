#pragma once
// One exception type for every user-facing failure: the message names the file, field or tensor
// and what was expected, so callers can print it and exit instead of crashing.
#include <sstream>
#include <stdexcept>
#include <string>

namespace nanovllm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from any streamable parts: throw_error("config.json: field '", name, "' ...").
template <class... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw Error(out.str());
}

}  // namespace nanovllm

#define NANOVLLM_CHECK(cond, ...)                 \
  do {                                            \
    if (!(cond)) ::nanovllm::throw_error(__VA_ARGS__); \
  } while (0)
