#include "backend/cuda/lt_matmul.h"

#include <algorithm>
#include <cstdio>
#include <vector>

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

LtMatmul::LtMatmul(size_t workspace_bytes, bool tune, bool log_tuning)
    : workspace_bytes_(workspace_bytes), tune_(tune), log_tuning_(log_tuning) {
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
const LtMatmul::Plan& LtMatmul::plan_for(const Tensor& x, const Tensor& w, const Tensor& y,
                                         cudaStream_t stream, bool accumulate) {
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  const DType in = x.dtype, out = y.dtype;
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
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  check_cuda(cudaStreamIsCapturing(stream, &capturing), "linear: capture status");
  const bool tune = tune_ && T <= kTuneMaxRows && capturing == cudaStreamCaptureStatusNone;
  cublasLtMatmulHeuristicResult_t results[kTuneCandidates]{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      handle_, p.desc, p.a, p.b, p.c, p.c, pref, tune ? kTuneCandidates : 1, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    throw_error("linear: cuBLASLt has no algorithm for x [", T, ", ", K, "] ", dtype_name(in),
                " . w [", N, ", ", K, "]^T -> ", dtype_name(out), " (status ", int(st), ")");
  }
  p.algo = found > 1 ? fastest(p, results, found, x, w, y, stream, accumulate) : results[0].algo;
  return plans_.emplace(key, p).first->second;
}

cublasLtMatmulAlgo_t LtMatmul::fastest(const Plan& p,
                                       const cublasLtMatmulHeuristicResult_t* candidates, int n,
                                       const Tensor& x, const Tensor& w, const Tensor& out,
                                       cudaStream_t stream, bool accumulate) {
  // A candidate replaces the heuristic's first only when clearly faster: timing noise alone
  // must not change the algorithm (and with it the last bits of the results).
  constexpr float kMargin = 0.97f;
  // In a decode step a product's weights come from DRAM (the model is far larger than L2), so
  // the timed calls cycle through enough copies of w that none is still in L2 when reused.
  int device = 0, l2_bytes = 0;
  check_cuda(cudaGetDevice(&device), "linear: current device");
  check_cuda(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "linear: L2 size");
  const size_t w_bytes = w.nbytes();
  const int copies = int(std::clamp<size_t>(2 * size_t(l2_bytes) / std::max<size_t>(w_bytes, 1) + 1, 1, 16));
  const int reps = std::max(10, copies);
  void* scratch = nullptr;
  char* w_copies = nullptr;
  check_cuda(cudaMalloc(&scratch, out.nbytes()), "linear: tuning scratch");
  check_cuda(cudaMalloc(&w_copies, w_bytes * size_t(copies)), "linear: tuning weight copies");
  for (int i = 0; i < copies; ++i)
    check_cuda(cudaMemcpyAsync(w_copies + size_t(i) * w_bytes, w.data, w_bytes,
                               cudaMemcpyDeviceToDevice, stream), "linear: tuning weight copies");
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "linear: tuning event");
  check_cuda(cudaEventCreate(&stop), "linear: tuning event");
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  auto launch = [&](const cublasLtMatmulAlgo_t& algo, int rep) {
    const void* w_rep = w_copies + size_t(rep % copies) * w_bytes;
    return cublasLtMatmul(handle_, p.desc, &alpha, w_rep, p.a, x.data, p.b, &beta, scratch, p.c,
                          scratch, p.c, &algo, workspace_, workspace_bytes_, stream);
  };
  // Each candidate's calls are captured as one graph and timed as one replay: eager calls of a
  // few microseconds would time the host's launch rate, not the kernels.
  auto time_us = [&](const cublasLtMatmulAlgo_t& algo) -> float {
    if (launch(algo, 0) != CUBLAS_STATUS_SUCCESS) return -1.f;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "linear: tuning");
    bool ok = true;
    for (int r = 0; r < reps && ok; ++r) ok = launch(algo, r) == CUBLAS_STATUS_SUCCESS;
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    cudaGraphExec_t exec = nullptr;
    ok = ok && ended == cudaSuccess && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
    float ms = -1.f;
    if (ok) {
      check_cuda(cudaGraphLaunch(exec, stream), "linear: tuning");  // warm
      check_cuda(cudaEventRecord(start, stream), "linear: tuning");
      check_cuda(cudaGraphLaunch(exec, stream), "linear: tuning");
      check_cuda(cudaEventRecord(stop, stream), "linear: tuning");
      check_cuda(cudaEventSynchronize(stop), "linear: tuning");
      check_cuda(cudaEventElapsedTime(&ms, start, stop), "linear: tuning");
    }
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // a failed capture or instantiation leaves no sticky error
    return ms < 0.f ? -1.f : 1e3f * ms / float(reps);
  };
  std::vector<float> us(size_t(n), -1.f);  // -1: the candidate failed
  for (int i = 0; i < n; ++i)
    if (candidates[i].state == CUBLAS_STATUS_SUCCESS) us[size_t(i)] = time_us(candidates[i].algo);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(scratch);
  cudaFree(w_copies);
  int best = -1;
  for (int i = 0; i < n; ++i)
    if (us[size_t(i)] > 0.f && (best < 0 || us[size_t(i)] < kMargin * us[size_t(best)])) best = i;
  if (best < 0) best = 0;  // none ran: the call itself reports cuBLASLt's error
  if (log_tuning_)
    std::fprintf(stderr, "[nanovllm] linear x [%lld, %lld] . w [%lld, %lld]^T: heuristic's first %.2f us, "
                 "chosen #%d %.2f us (%d candidates)\n", (long long)x.dim(0), (long long)x.dim(1),
                 (long long)w.dim(0), (long long)w.dim(1), double(us[0]), best, double(us[size_t(best)]), n);
  return candidates[best].algo;
}

void LtMatmul::run(const Tensor& x, const Tensor& w, Tensor out, cudaStream_t stream,
                   bool accumulate) {
  const Plan& p = plan_for(x, w, out, stream, accumulate);
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  check_cublas(cublasLtMatmul(handle_, p.desc, &alpha, w.data, p.a, x.data, p.b, &beta, out.data,
                              p.c, out.data, p.c, &p.algo, workspace_, workspace_bytes_, stream),
               "linear: cublasLtMatmul");
}

}  // namespace nanovllm::cuda
