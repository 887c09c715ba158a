#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nanovllm {

// Element types of tensors that live in memory. Quantized KV formats are in kv_dtype.h.
enum class DType : uint8_t { F32, F16, BF16, I32, I64, I8, U8 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::I8: return 1;
    case DType::U8: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t);
// Accepts "float32"/"f32", "float16"/"f16"/"half", "bfloat16"/"bf16".
std::optional<DType> parse_float_dtype(std::string_view name);

}  // namespace nanovllm
