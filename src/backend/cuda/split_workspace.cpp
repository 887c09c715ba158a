#include "backend/cuda/split_workspace.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace nanovllm::cuda {

SplitWorkspace::~SplitWorkspace() {
  retired_.push_back(live_);
  for (const Buffers& b : retired_) {
    cudaFree(b.partials);
    cudaFree(b.counters);
  }
}

void SplitWorkspace::reserve(int64_t floats, int64_t counters, bool capturing,
                             cudaStream_t stream) {
  if (floats <= floats_ && counters <= counters_) return;
  NANOVLLM_CHECK(!capturing, "paged_attention: the split-K workspace must grow (", floats,
                 " floats, ", counters, " counters) inside CUDA graph capture; run the step "
                 "eagerly first");
  if (live_.partials || live_.counters) retired_.push_back(live_);
  live_ = {};
  floats_ = std::max(floats, 2 * floats_);
  counters_ = std::max(counters, 2 * counters_);
  check_cuda(cudaMalloc(&live_.partials, size_t(std::max<int64_t>(floats_, 1)) * sizeof(float)),
             "paged_attention: allocating the split-K partials");
  check_cuda(cudaMalloc(&live_.counters, size_t(std::max<int64_t>(counters_, 1)) * sizeof(int32_t)),
             "paged_attention: allocating the split-K counters");
  check_cuda(cudaMemsetAsync(live_.counters, 0, size_t(std::max<int64_t>(counters_, 1)) * sizeof(int32_t),
                             stream),
             "paged_attention: zeroing the split-K counters");
}

}  // namespace nanovllm::cuda
