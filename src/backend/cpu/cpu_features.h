#pragma once
// What the host CPU can run beyond the build's baseline (x86-64), asked once. Kernels compiled
// for more (`__attribute__((target("avx2,fma")))`) are only called where this says so.

namespace nanovllm::cpu {

inline bool has_avx2_fma() {
#if defined(__x86_64__)
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

}  // namespace nanovllm::cpu
