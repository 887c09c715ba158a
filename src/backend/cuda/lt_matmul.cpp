#include "backend/cuda/lt_matmul.h"

#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"

namespace nanovllm::cuda {
namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    default: throw_error("linear: unsupported dtype ", dtype_name(t));
  }
}

}  // namespace

LtMatmul::LtMatmul(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  const char* tune = std::getenv("NANOVLLM_LT_AUTOTUNE");  // "1": time the candidates
  autotune_ = tune && std::string(tune) == "1";
  check_cublas(cublasLtCreate(&handle_), "linear: cublasLtCreate");
  check_cuda(cudaMalloc(&workspace_, workspace_bytes_), "linear: allocating the cuBLASLt workspace");
}

LtMatmul::~LtMatmul() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

// Row-major out[T, N] is column-major out^T [N, T] = w^T x^T: (column-major) A = w seen as
// [K, N] transposed, B = x seen as [K, T], C = out seen as [N, T].
const LtMatmul::Plan& LtMatmul::plan_for(int64_t T, int64_t N, int64_t K, DType in, DType out,
                                         const Operands& operands, cudaStream_t stream) {
  const Key key{T, N, K, int(in), int(out)};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  Plan p;
  const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;  // FP32 accumulate, never TF32
  check_cublas(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F), "linear: matmul desc");
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t)),
               "linear: transa");
  check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)),
               "linear: transb");
  check_cublas(cublasLtMatrixLayoutCreate(&p.a, cuda_type(in), uint64_t(K), uint64_t(N), K),
               "linear: layout w");
  check_cublas(cublasLtMatrixLayoutCreate(&p.b, cuda_type(in), uint64_t(K), uint64_t(T), K),
               "linear: layout x");
  check_cublas(cublasLtMatrixLayoutCreate(&p.c, cuda_type(out), uint64_t(N), uint64_t(T), N),
               "linear: layout out");
  cublasLtMatmulPreference_t pref = nullptr;
  check_cublas(cublasLtMatmulPreferenceCreate(&pref), "linear: preference");
  check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes_, sizeof(workspace_bytes_)),
               "linear: workspace preference");
  cublasLtMatmulHeuristicResult_t results[kCandidates]{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref,
                                                           kCandidates, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    throw_error("linear: cuBLASLt has no algorithm for x [", T, ", ", K, "] ", dtype_name(in),
                " . w [", N, ", ", K, "]^T -> ", dtype_name(out), " (status ", int(st), ")");
  }
  p.algo = fastest(p, results, found, T, operands, stream);
  return plans_.emplace(key, p).first->second;
}

// Opt-in (NANOVLLM_LT_AUTOTUNE=1): each new decode-sized shape (T <= kTunedMaxRows) times the
// heuristic's candidates once on the real operands, L2 flushed before each run (in a decode step
// every weight comes from HBM), and keeps the fastest; inside graph capture nothing is timed.
// Measured on the H200 (bb9b863, W1): BF16 8.07 s with it against 7.28 s with the first choice
// (INT8 6.69 / 6.42 s), the tuning itself landing in eager steps and the picks no faster; so
// the heuristic's first choice is the default.
cublasLtMatmulAlgo_t LtMatmul::fastest(const Plan& p, const cublasLtMatmulHeuristicResult_t* results,
                                       int found, int64_t T, const Operands& o,
                                       cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check_cuda(cudaStreamIsCapturing(stream, &capture), "linear: capture status");
  if (!autotune_ || found == 1 || T > kTunedMaxRows || capture != cudaStreamCaptureStatusNone)
    return results[0].algo;
  void* flush = nullptr;
  check_cuda(cudaMalloc(&flush, kFlushBytes), "linear: autotune L2 flush buffer");
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "linear: autotune event");
  check_cuda(cudaEventCreate(&stop), "linear: autotune event");
  const float alpha = 1.f, beta = 0.f;
  int best = 0;
  float best_ms = 0.f;
  for (int i = 0; i < found; ++i) {
    float total = 0.f;
    bool ok = true;
    for (int r = 0; r <= kTimedRuns && ok; ++r) {  // run 0 warms up (code, descriptors)
      check_cuda(cudaMemsetAsync(flush, r, kFlushBytes, stream), "linear: autotune L2 flush");
      check_cuda(cudaEventRecord(start, stream), "linear: autotune event");
      ok = cublasLtMatmul(handle_, p.desc, &alpha, o.w, p.a, o.x, p.b, &beta, o.out, p.c, o.out,
                          p.c, &results[i].algo, workspace_, workspace_bytes_,
                          stream) == CUBLAS_STATUS_SUCCESS;
      check_cuda(cudaEventRecord(stop, stream), "linear: autotune event");
      check_cuda(cudaEventSynchronize(stop), "linear: autotune");
      float ms = 0.f;
      check_cuda(cudaEventElapsedTime(&ms, start, stop), "linear: autotune timing");
      if (r > 0) total += ms;
    }
    if (ok && (i == 0 || total < best_ms)) {
      best = i;
      best_ms = total;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(flush);
  return results[best].algo;
}

void LtMatmul::run(const Tensor& x, const Tensor& w, Tensor out, cudaStream_t stream) {
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  const Plan& p = plan_for(T, N, K, x.dtype, out.dtype, Operands{x.data, w.data, out.data}, stream);
  const float alpha = 1.f, beta = 0.f;
  check_cublas(cublasLtMatmul(handle_, p.desc, &alpha, w.data, p.a, x.data, p.b, &beta, out.data,
                              p.c, out.data, p.c, &p.algo, workspace_, workspace_bytes_, stream),
               "linear: cublasLtMatmul");
}

}  // namespace nanovllm::cuda
