#pragma once
// One runtime switch from a KvDType to a compile-time constant, so that a kernel is written once
// as a template and every cache format is one more instantiation (no macro chains).
#include <type_traits>

#include "core/kv_dtype.h"

namespace nanovllm::cpu {

template <KvDType T>
using KvTag = std::integral_constant<KvDType, T>;

template <class F>
decltype(auto) dispatch_kv_dtype(KvDType t, F&& f) {
  switch (t) {
    case KvDType::F32: return f(KvTag<KvDType::F32>{});
    case KvDType::F16: return f(KvTag<KvDType::F16>{});
    case KvDType::BF16: return f(KvTag<KvDType::BF16>{});
    case KvDType::INT8: return f(KvTag<KvDType::INT8>{});
    case KvDType::FP8_E4M3: return f(KvTag<KvDType::FP8_E4M3>{});
    case KvDType::INT4: break;
  }
  return f(KvTag<KvDType::INT4>{});
}

}  // namespace nanovllm::cpu
