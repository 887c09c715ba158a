#include "core/kv_dtype.h"

namespace nanovllm {

std::string_view kv_dtype_name(KvDType t) {
  switch (t) {
    case KvDType::F32: return "f32";
    case KvDType::F16: return "fp16";
    case KvDType::BF16: return "bf16";
    case KvDType::INT8: return "int8";
    case KvDType::FP8_E4M3: return "fp8_e4m3";
    case KvDType::INT4: return "int4";
  }
  return "?";
}

KvDType kv_dtype_for(DType float_dtype) {
  switch (float_dtype) {
    case DType::F16: return KvDType::F16;
    case DType::BF16: return KvDType::BF16;
    default: return KvDType::F32;
  }
}

std::optional<KvDType> parse_kv_dtype(std::string_view name, DType model_dtype) {
  if (name == "auto") return kv_dtype_for(model_dtype);
  if (name == "bf16" || name == "bfloat16") return KvDType::BF16;
  if (name == "fp16" || name == "f16" || name == "float16") return KvDType::F16;
  if (name == "f32" || name == "fp32" || name == "float32") return KvDType::F32;
  if (name == "int8") return KvDType::INT8;
  if (name == "fp8" || name == "fp8_e4m3") return KvDType::FP8_E4M3;
  if (name == "int4") return KvDType::INT4;
  return std::nullopt;
}

}  // namespace nanovllm
