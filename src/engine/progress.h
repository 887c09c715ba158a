#pragma once
// nano-vllm's progress line on stderr: finished/total and prefill/decode throughput.
#include <chrono>
#include <cstdint>

namespace nanovllm {

class Progress {
 public:
  Progress(int64_t total, bool enabled) : total_(total), enabled_(enabled) {}
  // Called after each step with the step's token counts and duration.
  void update(int64_t finished, int64_t prefill_tokens, int64_t decode_tokens, double seconds);
  void close();

 private:
  int64_t total_;
  bool enabled_;
  double prefill_tps_ = 0, decode_tps_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace nanovllm
