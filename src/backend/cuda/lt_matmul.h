#pragma once
// out[T, N] = x[T, K] . w[N, K]^T through cuBLASLt: BF16/F16 inputs with FP32 accumulation (out
// in the input dtype or F32), or F32 with CUBLAS_COMPUTE_32F (no TF32). One persistent
// workspace; layouts, descriptor and the heuristic's algorithm are cached per shape
// (NANOVLLM_LT_AUTOTUNE=1: the fastest of its candidates for decode-sized products instead).
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

  void run(const Tensor& x, const Tensor& w, Tensor out, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  struct Operands {
    const void* x;
    const void* w;
    void* out;
  };
  static constexpr int kCandidates = 8;  // heuristic results timed per new shape
  static constexpr int kTimedRuns = 3;
  static constexpr int64_t kTunedMaxRows = 256;  // products with more rows keep the first choice
  static constexpr size_t kFlushBytes = size_t(128) << 20;  // > the H200's 60 MB L2
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int>;  // T, N, K, in dtype, out dtype
  const Plan& plan_for(int64_t T, int64_t N, int64_t K, DType in, DType out,
                       const Operands& operands, cudaStream_t stream);
  cublasLtMatmulAlgo_t fastest(const Plan& p, const cublasLtMatmulHeuristicResult_t* results,
                               int found, int64_t T, const Operands& operands, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;
  bool autotune_ = false;  // NANOVLLM_LT_AUTOTUNE=1: time the candidates (see fastest())
};

}  // namespace nanovllm::cuda
