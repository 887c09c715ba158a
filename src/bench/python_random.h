#pragma once
// A generator identical to CPython's random.Random (Mersenne Twister MT19937 with init_by_array
// seeding), so C++ can reproduce workloads that Python scripts such as nano-vllm's bench.py make.
#include <array>
#include <cstdint>

namespace nanovllm::bench {

class PythonRandom {
 public:
  // random.seed(n) for an int n: seeds from the 32-bit words of |n|, least significant first.
  explicit PythonRandom(int64_t seed = 0) { this->seed(seed); }
  void seed(int64_t seed);

  // random.getrandbits(k), k in [0, 64].
  uint64_t getrandbits(int k);
  // random.randint(a, b): uniform in [a, b], both ends included (b - a < 2^63).
  int64_t randint(int64_t a, int64_t b);
  // random.random(): uniform double in [0, 1) with 53 random bits.
  double random();
  // random._randbelow(n): uniform in [0, n) by rejection over getrandbits(bit_length(n)).
  uint64_t randbelow(uint64_t n);

 private:
  static constexpr int kN = 624;
  uint32_t next_uint32();
  void init_genrand(uint32_t s);

  std::array<uint32_t, kN> state_{};
  int index_ = kN + 1;
};

}  // namespace nanovllm::bench
