#include "engine/progress.h"

#include <cstdio>

namespace nanovllm {

void Progress::update(int64_t finished, int64_t prefill_tokens, int64_t decode_tokens,
                      double seconds) {
  if (!enabled_) return;
  if (seconds > 0 && prefill_tokens > 0) prefill_tps_ = double(prefill_tokens) / seconds;
  if (seconds > 0 && decode_tokens > 0) decode_tps_ = double(decode_tokens) / seconds;
  const auto now = std::chrono::steady_clock::now();
  if (finished < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const int width = 30;
  const int filled = total_ ? int(width * finished / total_) : width;
  std::fprintf(stderr, "\rGenerating: %3d%%|", total_ ? int(100 * finished / total_) : 100);
  for (int i = 0; i < width; ++i) std::fputc(i < filled ? '#' : ' ', stderr);
  std::fprintf(stderr, "| %lld/%lld [Prefill=%.0ftok/s, Decode=%.0ftok/s]", (long long)finished,
               (long long)total_, prefill_tps_, decode_tps_);
  std::fflush(stderr);
}

void Progress::close() {
  if (enabled_) std::fputc('\n', stderr);
}

}  // namespace nanovllm
