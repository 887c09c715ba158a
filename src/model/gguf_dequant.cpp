#include "model/gguf_dequant.h"

#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "model/gguf.h"

namespace nanovllm {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_float(h);
}

// Each function expands one block at `b` into `y` (32 or 256 values).

// Q8_0: f16 d, int8 q[32]; y = d * q.
void block_q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = d * float(int8_t(b[2 + j]));
}

// Q4_0: f16 d, 16 bytes of nibbles; low nibbles are values 0..15, high nibbles 16..31; y = d * (q - 8).
void block_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(int(qs[j] & 0xF) - 8);
    y[j + 16] = d * float(int(qs[j] >> 4) - 8);
  }
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0; y = d * q + m.
void block_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(qs[j] & 0xF) + m;
    y[j + 16] = d * float(qs[j] >> 4) + m;
  }
}

// Q5_0 / Q5_1: as Q4 plus a u32 of fifth bits (bit j for value j); Q5_0 centers at 16.
void block_q5(const uint8_t* b, float* y, bool has_min) {
  const float d = f16_at(b);
  const float m = has_min ? f16_at(b + 2) : 0.f;
  const uint8_t* p = b + (has_min ? 4 : 2);
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const uint8_t* qs = p + 4;
  const int center = has_min ? 0 : 16;
  for (int j = 0; j < 16; ++j) {
    const int lo = int(qs[j] & 0xF) | int(((qh >> j) & 1u) << 4);
    const int hi = int(qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * float(lo - center) + m;
    y[j + 16] = d * float(hi - center) + m;
  }
}

// K-quants' 12 bytes hold eight 6-bit scales and eight 6-bit mins for the 32-value sub-blocks.
void k_scale_min(int j, const uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// The 256 values of a Q4_K / Q5_K block: four groups of 64, each using one 32-byte run of qs
// (low nibbles for the group's first 32 values, high for the next 32) and the scale/min pairs
// 2*group and 2*group+1; y = d * scale * q - dmin * min. fifth_bit(l, bit) adds bit 4 of a
// value (Q5_K's qh; 0 for Q4_K), bit being the qh bit of the value's half-group.
template <class FifthBit>
void k_quant_groups(const uint8_t* b, const uint8_t* qs, FifthBit fifth_bit, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  for (int group = 0; group < 4; ++group) {
    int s0, m0, s1, m1;
    k_scale_min(2 * group, scales, s0, m0);
    k_scale_min(2 * group + 1, scales, s1, m1);
    const uint8_t* q = qs + 32 * group;
    float* out = y + 64 * group;
    for (int l = 0; l < 32; ++l) {
      const int lo = (q[l] & 0xF) | fifth_bit(l, 2 * group);
      const int hi = (q[l] >> 4) | fifth_bit(l, 2 * group + 1);
      out[l] = d * float(s0) * float(lo) - dmin * float(m0);
      out[l + 32] = d * float(s1) * float(hi) - dmin * float(m1);
    }
  }
}

// Q4_K: f16 d, f16 dmin, scales[12], qs[128].
void block_q4_k(const uint8_t* b, float* y) {
  k_quant_groups(b, b + 16, [](int, int) { return 0; }, y);
}

// Q5_K: as Q4_K plus qh[32] before qs: bit 2*group of qh[l] is the fifth bit of value l of the
// group's first 32, bit 2*group+1 of its second 32.
void block_q5_k(const uint8_t* b, float* y) {
  const uint8_t* qh = b + 16;
  k_quant_groups(b, b + 48, [qh](int l, int bit) { return ((qh[l] >> bit) & 1) << 4; }, y);
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16] (one per 16 values), f16 d.
// Each half of 128 values uses 64 bytes of ql and 32 of qh; y = d * scale * (q - 32).
void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* l4 = ql + 64 * half;
    const uint8_t* h2 = qh + 32 * half;
    const int8_t* s = sc + 8 * half;
    float* out = y + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((l4[l] & 0xF) | (((h2[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((l4[l + 32] & 0xF) | (((h2[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * float(s[is]) * float(q1);
      out[l + 32] = d * float(s[is + 2]) * float(q2);
      out[l + 64] = d * float(s[is + 4]) * float(q3);
      out[l + 96] = d * float(s[is + 6]) * float(q4);
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::Q8_0: return block_q8_0;
    case GgmlType::Q4_0: return block_q4_0;
    case GgmlType::Q4_1: return block_q4_1;
    case GgmlType::Q5_0: return [](const uint8_t* b, float* y) { block_q5(b, y, false); };
    case GgmlType::Q5_1: return [](const uint8_t* b, float* y) { block_q5(b, y, true); };
    case GgmlType::Q4_K: return block_q4_k;
    case GgmlType::Q5_K: return block_q5_k;
    case GgmlType::Q6_K: return block_q6_k;
    default: return nullptr;
  }
}

}  // namespace

bool ggml_type_dequantizable(uint32_t type) {
  auto t = GgmlType(type);
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || block_fn(type) != nullptr;
}

std::vector<float> dequantize_to_f32(uint32_t type, std::span<const uint8_t> data, int64_t numel,
                                     const std::string& what) {
  const GgmlTypeInfo info = ggml_type_info(type);
  NANOVLLM_CHECK(ggml_type_dequantizable(type), what, ": type ", info.name, " (", type,
                 ") is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
  NANOVLLM_CHECK(numel >= 0 && numel % info.block_elems == 0 &&
                     uint64_t(numel / info.block_elems) * uint64_t(info.block_bytes) == data.size(),
                 what, ": ", data.size(), " bytes do not hold ", numel, " values of type ", info.name);
  std::vector<float> out(static_cast<size_t>(numel));
  const uint8_t* src = data.data();
  float* dst = out.data();
  switch (GgmlType(type)) {
    case GgmlType::F32:
      if (numel > 0) std::memcpy(dst, src, size_t(numel) * 4);
      return out;
    case GgmlType::F16:
    case GgmlType::BF16: {
      const bool bf16 = GgmlType(type) == GgmlType::BF16;
#pragma omp parallel for schedule(static) if (numel > (1 << 20))
      for (int64_t i = 0; i < numel; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16 ? bf16_to_float(h) : f16_to_float(h);
      }
      return out;
    }
    default: break;
  }
  const BlockFn fn = block_fn(type);
  const int64_t blocks = numel / info.block_elems;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t i = 0; i < blocks; ++i) fn(src + i * info.block_bytes, dst + i * info.block_elems);
  return out;
}

}  // namespace nanovllm
