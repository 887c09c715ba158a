#pragma once
// Error checks for CUDA runtime and cuBLASLt calls in the CUDA backend: every failure becomes a
// nanovllm::Error that names the op (or call) that failed and the CUDA error string.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace nanovllm::cuda {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw_error("cuda backend: ", what, " failed: ", cudaGetErrorName(status), " (",
                cudaGetErrorString(status), ")");
}

inline void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw_error("cuda backend: ", what, " failed: cuBLAS status ", int(status));
}

// After a kernel launch: catches bad launch configurations without synchronizing.
inline void check_launch(const char* op) { check_cuda(cudaGetLastError(), op); }

}  // namespace nanovllm::cuda
