#pragma once
// Counter-based randomness: the draw for (seed, step) is a pure function, so a request samples
// the same tokens whatever batch it runs in, on the CPU and on the GPU alike.
#include <cstdint>

#include "core/half.h"

namespace nanovllm {

NANOVLLM_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 bits of precision.
NANOVLLM_HD float uniform_from_counter(uint64_t seed, uint64_t step) {
  uint64_t r = splitmix64(splitmix64(seed) ^ step);
  return float(r >> 40) * (1.0f / 16777216.0f);
}

}  // namespace nanovllm
