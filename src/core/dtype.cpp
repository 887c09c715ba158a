#include "core/dtype.h"

namespace nanovllm {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
  }
  return "?";
}

std::optional<DType> parse_float_dtype(std::string_view name) {
  if (name == "float32" || name == "f32" || name == "float") return DType::F32;
  if (name == "float16" || name == "f16" || name == "half" || name == "fp16") return DType::F16;
  if (name == "bfloat16" || name == "bf16") return DType::BF16;
  return std::nullopt;
}

}  // namespace nanovllm
