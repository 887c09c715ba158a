#pragma once
// What the CUDA tests that store K/V compare: a paged cache dequantized to floats, and the
// tolerance of a cache's normalized error per activation and KV dtype.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/kv_quant.h"
#include "gpu_test_util.h"

namespace nanovllm::gpu_test {

// Dequantized cache contents: [slots * Hkv, D].
inline std::vector<float> dequantized(const std::vector<uint8_t>& values,
                                      const std::vector<float>& scales, KvDType t, int64_t rows,
                                      int32_t D) {
  std::vector<float> out(size_t(rows) * D);
  const int64_t hb = kv_head_bytes(t, D);
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t i = 0; i < D; ++i)
      out[size_t(r) * D + i] = kv_load_raw(values.data() + r * hb, t, i) *
                               (kv_is_quantized(t) ? scales[size_t(r)] : 1.f);
  return out;
}

// Tolerance of a cache's normalized error. K goes through norm, RoPE and the rotation in float on
// both sides, but not by the same operations: the GPU sums the norm's squares in float across the
// warp and fuses RoPE's products into FMAs, the CPU sums in double and rounds every product. The
// floats then differ in their last bits, and the rotation spreads that over the whole head (its
// rounding errors scale with the head's norm, not with each element), so an F16/BF16 element
// that lies that close to a rounding midpoint is stored one step of its format apart. One BF16
// step at |k| ~ 0.8 alone is a normalized error of ~2e-5 over the D=128 cache here, above the F32
// tolerance of 1e-5 (a host emulation of the kernel measured up to 2.5e-5 for F16 and 1.0e-4 for
// BF16 over 100 seed sets). A 16-bit cache may have 1% of its elements one step off: 0.1 x the
// format's relative step (2^-10 F16, 2^-7 BF16); one element off by 1 is still 7x above it.
inline double cache_tolerance(DType dt, KvDType kvt) {
  if (kv_is_quantized(kvt)) return 1e-2;
  if (kvt == KvDType::F16) return std::max(tolerance(dt, 1e-5), 0.1 * 0x1p-10);
  if (kvt == KvDType::BF16) return std::max(tolerance(dt, 1e-5), 0.1 * 0x1p-7);
  return tolerance(dt, 1e-5);
}

}  // namespace nanovllm::gpu_test
