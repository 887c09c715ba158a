#pragma once
// Division by a runtime constant without a divide instruction: a multiply-high, an add and a
// shift (round-up multiplier method, Granlund & Montgomery 1994). Valid for dividends in
// [0, 2^31) and divisors in [1, 2^31). The kernels use it for position -> cache block.
#include <cstdint>

#include "core/half.h"  // NANOVLLM_HD

namespace nanovllm {

struct FastDivider {
  uint32_t divisor = 1;
  uint32_t multiplier = 1;
  uint32_t shift = 0;

  FastDivider() = default;
  explicit FastDivider(uint32_t d) : divisor(d) {
    while ((uint64_t(1) << shift) < d) ++shift;  // shift = ceil(log2(d))
    multiplier = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }

  NANOVLLM_HD uint32_t quotient(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, multiplier);
#else
    const uint32_t hi = uint32_t((uint64_t(n) * multiplier) >> 32);
#endif
    return (hi + n) >> shift;
  }
  NANOVLLM_HD uint32_t remainder(uint32_t n, uint32_t q) const { return n - q * divisor; }
};

}  // namespace nanovllm
