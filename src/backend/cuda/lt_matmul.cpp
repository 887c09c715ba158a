#include "backend/cuda/lt_matmul.h"

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
const LtMatmul::Plan& LtMatmul::plan_for(int64_t T, int64_t N, int64_t K, DType in, DType out) {
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
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    throw_error("linear: cuBLASLt has no algorithm for x [", T, ", ", K, "] ", dtype_name(in),
                " . w [", N, ", ", K, "]^T -> ", dtype_name(out), " (status ", int(st), ")");
  }
  p.algo = result.algo;
  return plans_.emplace(key, p).first->second;
}

void LtMatmul::run(const Tensor& x, const Tensor& w, Tensor out, cudaStream_t stream,
                   bool accumulate) {
  const int64_t T = x.dim(0), K = x.dim(1), N = w.dim(0);
  const Plan& p = plan_for(T, N, K, x.dtype, out.dtype);
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  check_cublas(cublasLtMatmul(handle_, p.desc, &alpha, w.data, p.a, x.data, p.b, &beta, out.data,
                              p.c, out.data, p.c, &p.algo, workspace_, workspace_bytes_, stream),
               "linear: cublasLtMatmul");
}

}  // namespace nanovllm::cuda
