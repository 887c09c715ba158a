#include <gtest/gtest.h>

#include "engine/stream_holdback.h"

namespace nanovllm {
namespace {

TEST(StreamHoldback, HoldsBackWhatALaterStopStringCouldCut) {
  EXPECT_EQ(longest_stop_length({"\n", "world", "ab"}), 5u);
  EXPECT_EQ(longest_stop_length({}), 0u);
  EXPECT_EQ(reportable_text_length("Hello wor", false, 0), 9u);
  EXPECT_EQ(reportable_text_length("Hello wor", false, 1), 9u);  // a 1-byte stop cuts nothing reported
  EXPECT_EQ(reportable_text_length("Hello wor", false, 4), 6u);  // "wor" may begin "worl"
  EXPECT_EQ(reportable_text_length("Hi", false, 5), 0u);
  EXPECT_EQ(reportable_text_length("Hello wor", true, 4), 9u);   // finished: all of it
}

TEST(StreamHoldback, NeverSplitsAUtf8Character) {
  const std::string text = "ab\xC3\xA9\xE2\x82\xAC";  // "abé€": bytes 2-3 and 4-6 are characters
  for (size_t stop = 1; stop <= text.size() + 1; ++stop) {
    const size_t n = reportable_text_length(text, false, stop);
    EXPECT_LE(n, text.size() - std::min(text.size(), stop - 1)) << "stop " << stop;
    EXPECT_TRUE(n == 0 || n == 1 || n == 2 || n == 4 || n == 7) << "stop " << stop << " cut at " << n;
  }
}

}  // namespace
}  // namespace nanovllm
