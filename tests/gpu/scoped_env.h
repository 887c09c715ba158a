#pragma once
// An environment variable set for a scope: the CUDA backend reads its measurement switches
// (NANOVLLM_*) when it is constructed, so a test builds the backend it needs inside one. The
// previous value (or its absence) comes back at the end of the scope, exceptions included.
#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"

namespace nanovllm::gpu_test {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    NANOVLLM_CHECK(setenv(name, value, 1) == 0, "setenv ", name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace nanovllm::gpu_test
