#pragma once
// out[T, N] (+)= x[T, K] . w[N, K]^T through cuBLASLt: BF16/F16 inputs with FP32 accumulation (out
// in the input dtype or F32), or F32 with CUBLAS_COMPUTE_32F (no TF32). One persistent
// workspace; layouts, descriptor and the algorithm are cached per shape. The algorithm is the
// heuristic's first, or with tuning on, for T <= kTuneMaxRows (decode batches, replayed many
// times), the fastest of the heuristic's first kTuneCandidates timed on the call's own
// activations with the weights cold in L2, as in a step.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "core/tensor.h"

namespace nanovllm::cuda {

class LtMatmul {
 public:
  static constexpr int64_t kTuneMaxRows = 512;
  static constexpr int kTuneCandidates = 8;

  // tune: time the candidates of small-T shapes (stderr gets one line per tuned shape when
  // log_tuning).
  LtMatmul(size_t workspace_bytes, bool tune, bool log_tuning);
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
  // The plan of the shape of (x, w, out): created on first use (and tuned on those operands).
  const Plan& plan_for(const Tensor& x, const Tensor& w, const Tensor& out, cudaStream_t stream,
                       bool accumulate);
  // The fastest of `candidates` for out (+)= x . w^T (times in a scratch output, never in out).
  cublasLtMatmulAlgo_t fastest(const Plan& p, const cublasLtMatmulHeuristicResult_t* candidates,
                               int n, const Tensor& x, const Tensor& w, const Tensor& out,
                               cudaStream_t stream, bool accumulate);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  bool tune_ = false, log_tuning_ = false;
  std::map<Key, Plan> plans_;
};

}  // namespace nanovllm::cuda
