#pragma once
// out[T, N] (+)= x[T, K] . w[N, K]^T through cuBLASLt: BF16/F16 inputs with FP32 accumulation (out
// in the input dtype or F32), or F32 with CUBLAS_COMPUTE_32F (no TF32). One persistent
// workspace; layouts, descriptor and the heuristic's algorithm are cached per shape.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "core/tensor.h"

namespace nanovllm::cuda {

class LtMatmul {
 public:
  explicit LtMatmul(size_t workspace_bytes);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // accumulate: out += the product (beta = 1, in place), else out = it.
  void run(const Tensor& x, const Tensor& w, Tensor out, cudaStream_t stream,
           bool accumulate = false);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int>;  // T, N, K, in dtype, out dtype
  const Plan& plan_for(int64_t T, int64_t N, int64_t K, DType in, DType out);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;
};

}  // namespace nanovllm::cuda
