#pragma once
// Kernel launches that may overlap the previous kernel on the stream (programmatic dependent
// launch, sm_90+; Stream::overlap_launches). Such a kernel can be scheduled while its predecessor
// drains, so every kernel of this backend starts with wait_for_previous_kernel() (griddepcontrol
// .wait: returns once the kernel before it has finished and its writes are visible; a no-op for
// a normal launch) before it touches memory or exits, and then calls allow_next_kernel() so that
// the kernel after it may be scheduled early in turn. Waiting first in every CTA keeps the order
// transitive: a kernel cannot finish before the one it follows.
#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/kernels.h"

namespace nanovllm::cuda {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The first statement of every kernel of this backend.
__device__ __forceinline__ void start_after_previous_kernel() {
  wait_for_previous_kernel();
  allow_next_kernel();
}

// kernel<<<grid, block, smem, stream>>>(args...), overlapping the previous kernel when the stream
// allows it. Errors surface through check_launch() after it, as with <<<>>>.
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                   const Stream& stream, Args&&... args) {
  cudaLaunchAttribute overlap[1] = {};
  overlap[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream.handle;
  config.attrs = overlap;
  config.numAttrs = stream.overlap_launches ? 1 : 0;
  (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace nanovllm::cuda
