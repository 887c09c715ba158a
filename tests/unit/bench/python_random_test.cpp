#include "bench/python_random.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace nanovllm::bench {
namespace {

TEST(PythonRandom, GetrandbitsMatchesCPythonSeedZero) {
  // python3 -c "import random; r=random.Random(0); print([r.getrandbits(32) for _ in range(3)])"
  PythonRandom r(0);
  EXPECT_EQ(r.getrandbits(32), 3626764237u);
  EXPECT_EQ(r.getrandbits(32), 1654615998u);
  EXPECT_EQ(r.getrandbits(32), 3255389356u);
}

TEST(PythonRandom, RandintMatchesCPythonWideRange) {
  // python3 -c "import random; r=random.Random(12345); print([r.randint(0,10**9) for _ in range(4)])"
  PythonRandom r(12345);
  EXPECT_EQ(r.randint(0, 1000000000), 447342177);
  EXPECT_EQ(r.randint(0, 1000000000), 786714830);
  EXPECT_EQ(r.randint(0, 1000000000), 10919057);
  EXPECT_EQ(r.randint(0, 1000000000), 880655899);
}

TEST(PythonRandom, RandintMatchesCPythonSmallRangeWithRejections) {
  // python3 -c "import random; r=random.Random(1); print([r.randint(1,3) for _ in range(10)])"
  PythonRandom r(1);
  const int expected[] = {1, 3, 1, 2, 1, 2, 2, 2, 3, 2};
  for (int e : expected) EXPECT_EQ(r.randint(1, 3), e);
}

TEST(PythonRandom, NegativeSeedUsesAbsoluteValueAndRandomMatches) {
  // python3 -c "import random; r=random.Random(-7); print(repr(r.random()), repr(r.random()))"
  PythonRandom r(-7);
  EXPECT_EQ(r.random(), 0.32383276483316237);
  EXPECT_EQ(r.random(), 0.15084917392450192);
  PythonRandom a(-7), b(7);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.getrandbits(31), b.getrandbits(31));
}

TEST(PythonRandom, MultiWordSeedAndWideGetrandbits) {
  // python3 -c "import random; r=random.Random(2**40+3); print(r.getrandbits(64), r.getrandbits(7), r.randint(-5,5))"
  PythonRandom r((int64_t{1} << 40) + 3);
  EXPECT_EQ(r.getrandbits(64), 1122159575387338702ull);
  EXPECT_EQ(r.getrandbits(7), 70u);
  EXPECT_EQ(r.randint(-5, 5), -4);
  // python3 -c "import random; r=random.Random(2**32); print(r.getrandbits(32))"
  PythonRandom s(int64_t{1} << 32);
  EXPECT_EQ(s.getrandbits(32), 485306839u);
}

TEST(PythonRandom, ReseedRestartsTheSequence) {
  PythonRandom r(99);
  const uint64_t first = r.getrandbits(40);
  r.getrandbits(17);
  r.seed(99);
  EXPECT_EQ(r.getrandbits(40), first);
}

TEST(PythonRandom, BadArgumentsThrow) {
  PythonRandom r(0);
  EXPECT_THROW(r.randint(5, 4), Error);
  EXPECT_THROW(r.getrandbits(65), Error);
  EXPECT_THROW(r.randbelow(0), Error);
  EXPECT_EQ(r.getrandbits(0), 0u);
}

}  // namespace
}  // namespace nanovllm::bench
