#pragma once
// The row gather behind embedding and gather_rows: dst[i, :] = src[index[i], :] for n rows of
// width H floats (indices already checked by the caller).
#include <cstdint>
#include <cstring>

namespace nanovllm::cpu {

inline void copy_indexed_rows(const float* src, const int32_t* index, int64_t n, int64_t H,
                              float* dst) {
#pragma omp parallel for schedule(static) if (n * H > 65536)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + i * H, src + int64_t(index[i]) * H, size_t(H) * sizeof(float));
}

}  // namespace nanovllm::cpu
