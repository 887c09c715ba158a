#pragma once
// What the CUDA tests that store K/V share: a paged cache twice (host for the CPU reference,
// device for the op under test) with the same junk in every row and random distinct slots, the
// cache dequantized to floats, and the tolerance of a cache's normalized error.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/backend_op_cases.h"
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

// One layer's K/V cache [num_blocks * block_size * Hkv heads] on the host and on the device,
// every row holding the same junk head (a valid encoding, so untouched rows must stay equal) and
// junk scales (quantized dtypes only).
struct CachePair {
  KvDType dtype;
  int32_t num_blocks, block_size, Hkv, D;
  int64_t rows;
  std::vector<uint8_t> k, v;
  std::vector<float> k_scale, v_scale;
  DeviceArray dk, dv, dk_scale, dv_scale;

  CachePair(Gpu& gpu, KvDType t, int32_t num_blocks_, int32_t block_size_, int32_t Hkv_,
            int32_t D_, testing::Rng& rng)
      : dtype(t), num_blocks(num_blocks_), block_size(block_size_), Hkv(Hkv_), D(D_),
        rows(int64_t(num_blocks_) * block_size_ * Hkv_) {
    const int64_t hb = kv_head_bytes(t, D);
    k.resize(size_t(rows * hb));
    v.resize(size_t(rows * hb));
    std::vector<float> junk = testing::random_floats(size_t(D), rng);
    for (int64_t r = 0; r < rows; ++r) {
      kv_store_head(junk.data(), D, t, k.data() + r * hb);
      kv_store_head(junk.data(), D, t, v.data() + r * hb);
    }
    if (kv_is_quantized(t)) {
      k_scale.assign(size_t(rows), 0.75f);
      v_scale.assign(size_t(rows), 0.5f);
    }
    dk = gpu.bytes(k.data(), k.size());
    dv = gpu.bytes(v.data(), v.size());
    dk_scale = gpu.bytes(k_scale.data(), k_scale.size() * 4);
    dv_scale = gpu.bytes(v_scale.data(), v_scale.size() * 4);
  }
  PagedKvLayer host_layer() {
    return {k.data(), v.data(), k_scale.empty() ? nullptr : k_scale.data(),
            v_scale.empty() ? nullptr : v_scale.data(), dtype, num_blocks, block_size, Hkv, D};
  }
  PagedKvLayer device_layer() const {
    auto scales = [&](const DeviceArray& a) {
      return k_scale.empty() ? nullptr : static_cast<float*>(a.buffer.data());
    };
    return {dk.buffer.data(), dv.buffer.data(), scales(dk_scale), scales(dv_scale), dtype,
            num_blocks, block_size, Hkv, D};
  }
  // `count` distinct slots of the cache in random order.
  std::vector<int64_t> random_slots(int64_t count, testing::Rng& rng) const {
    std::vector<int64_t> slots(size_t(num_blocks) * block_size);
    for (size_t i = 0; i < slots.size(); ++i) slots[i] = int64_t(i);
    std::shuffle(slots.begin(), slots.end(), rng.engine());
    slots.resize(size_t(count));
    return slots;
  }

  // The device's cache (values, scales) read back.
  struct Contents {
    std::vector<uint8_t> bytes;
    std::vector<float> scales;
  };
  Contents device_contents(Gpu& gpu, bool value_cache) const {
    const auto& want = value_cache ? v : k;
    Contents c{gpu.read_bytes((value_cache ? dv : dk).buffer.data(), want.size()),
               std::vector<float>(k_scale.size())};
    if (!c.scales.empty())
      gpu.backend().copy_to_host(c.scales.data(), (value_cache ? dv_scale : dk_scale).buffer.data(),
                                 c.scales.size() * 4);
    return c;
  }
  // K (value_cache false) or V dequantized, [rows, D]: the host's, or the device's read back.
  std::vector<float> host_dequantized(bool value_cache) const {
    return dequantized(value_cache ? v : k, value_cache ? v_scale : k_scale, dtype, rows, D);
  }
  std::vector<float> device_dequantized(Gpu& gpu, bool value_cache) const {
    const Contents c = device_contents(gpu, value_cache);
    return dequantized(c.bytes, c.scales, dtype, rows, D);
  }
};

}  // namespace nanovllm::gpu_test
