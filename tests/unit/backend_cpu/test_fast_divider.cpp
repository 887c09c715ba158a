#include "core/fast_divider.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>

namespace nanovllm {
namespace {

void expect_divides(uint32_t d, uint32_t n) {
  const FastDivider div(d);
  const uint32_t q = div.quotient(n);
  ASSERT_EQ(q, n / d) << n << " / " << d;
  ASSERT_EQ(div.remainder(n, q), n % d) << n << " % " << d;
}

TEST(FastDivider, EveryBlockSizeOverSmallPositions) {
  for (uint32_t d = 1; d <= 1024; ++d)
    for (uint32_t n = 0; n < 5000; ++n) expect_divides(d, n);
}

TEST(FastDivider, LargeDividendsAndDivisors) {
  std::mt19937 gen(3);
  std::uniform_int_distribution<uint32_t> dividend(0, (uint32_t(1) << 31) - 1);
  std::uniform_int_distribution<uint32_t> divisor(1, (uint32_t(1) << 31) - 1);
  for (int i = 0; i < 200000; ++i) {
    expect_divides(std::max<uint32_t>(1, divisor(gen) >> (i % 31)), dividend(gen));
    expect_divides(uint32_t(i % 1024) + 1, dividend(gen));
  }
  for (uint32_t d : {1u, 2u, 3u, 7u, 16u, 255u, 256u, 257u, 1000u, 1024u, (1u << 31) - 1})
    for (uint32_t n : {0u, 1u, d - 1, d, d + 1, (1u << 31) - 2, (1u << 31) - 1}) expect_divides(d, n);
}

}  // namespace
}  // namespace nanovllm
