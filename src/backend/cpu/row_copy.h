#pragma once
// The row gather behind embedding and gather_rows: dst[i, :] = src[index[i], :] for n rows of
// width H (indices already checked by the caller); BF16 rows are widened to float.
#include <cstdint>
#include <cstring>

#include "core/half.h"

namespace nanovllm::cpu {

inline void copy_indexed_rows(const float* src, const int32_t* index, int64_t n, int64_t H,
                              float* dst) {
#pragma omp parallel for schedule(static) if (n * H > 65536)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + i * H, src + int64_t(index[i]) * H, size_t(H) * sizeof(float));
}

inline void copy_indexed_rows(const uint16_t* bf16_src, const int32_t* index, int64_t n, int64_t H,
                              float* dst) {
#pragma omp parallel for schedule(static) if (n * H > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* row = bf16_src + int64_t(index[i]) * H;
    for (int64_t h = 0; h < H; ++h) dst[i * H + h] = bf16_to_float(row[h]);
  }
}

}  // namespace nanovllm::cpu
