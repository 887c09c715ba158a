#pragma once
// Storage formats of the paged KV cache. Float formats store values as they are; quantized
// formats store one FP32 scale per (token, KV head) beside the values (see kv_quant.h).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/dtype.h"

namespace nanovllm {

enum class KvDType : uint8_t { F32, F16, BF16, INT8, FP8_E4M3, INT4 };

constexpr bool kv_is_quantized(KvDType t) {
  return t == KvDType::INT8 || t == KvDType::FP8_E4M3 || t == KvDType::INT4;
}

// Bytes of one (token, head) vector of head_dim values, scales not included.
constexpr int64_t kv_head_bytes(KvDType t, int64_t head_dim) {
  switch (t) {
    case KvDType::F32: return head_dim * 4;
    case KvDType::F16:
    case KvDType::BF16: return head_dim * 2;
    case KvDType::INT8:
    case KvDType::FP8_E4M3: return head_dim;
    case KvDType::INT4: return (head_dim + 1) / 2;
  }
  return 0;
}

// Bytes of the scales of one (token, head): one FP32 for quantized formats.
constexpr int64_t kv_scale_bytes(KvDType t) { return kv_is_quantized(t) ? 4 : 0; }

std::string_view kv_dtype_name(KvDType t);
// "auto" resolves to the model's dtype; also "bf16", "fp16", "f32", "int8", "fp8_e4m3"
// (alias "fp8"), "int4". Returns nullopt for anything else.
std::optional<KvDType> parse_kv_dtype(std::string_view name, DType model_dtype);
KvDType kv_dtype_for(DType float_dtype);

}  // namespace nanovllm
