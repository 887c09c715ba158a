// out[M, N] = x[M, K] . w[N, K]^T for a few rows (M <= kSmallLinearMaxRows: decode at small
// batch, the sampled rows' LM head). The product is a stream over the weights, where cuBLASLt's
// heuristic picks GEMM tiles that leave most of each tile idle (~0.26 TB/s measured for M = 1).
// A CTA owns kFeatures consecutive output features; its threads walk K in 16-byte chunks of w
// (8 elements), each chunk of x loaded once and used for all kFeatures features from registers.
// FP32 accumulation, reduced across the CTA through shared memory. With ACC the result is added to
// out (linear_residual: o_proj and down adding into the residual stream), rounded once.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace nanovllm::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kFeatures = 4;  // output features per CTA

template <class T>
__device__ __forceinline__ void to_float8(const Vec<T, 8>& v, float f[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) f[i] = to_f(v.v[i]);
}

// grid ceil(N / kFeatures); x [M, K], w [N, K] of T, out [M, N] of O (T or float; read first
// when ACC); K % 8 == 0.
template <class T, class O, int M, bool ACC>
__global__ void __launch_bounds__(kThreads) small_m_linear_kernel(const T* __restrict__ x,
                                                                   const T* __restrict__ w,
                                                                   int64_t N, int64_t K,
                                                                   O* __restrict__ out) {
  start_after_previous_kernel();
  __shared__ float partial[kWarps][M * kFeatures];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t n0 = int64_t(blockIdx.x) * kFeatures;
  const T* wrow[kFeatures];
#pragma unroll
  for (int j = 0; j < kFeatures; ++j) wrow[j] = w + min(n0 + j, N - 1) * K;  // past N: unused

  float acc[M][kFeatures];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int j = 0; j < kFeatures; ++j) acc[m][j] = 0.f;

  const int64_t chunks = K / 8;
#pragma unroll 2
  for (int64_t c = tid; c < chunks; c += kThreads) {
    float wf[kFeatures][8];
#pragma unroll
    for (int j = 0; j < kFeatures; ++j) {
      const uint4 u = __ldcs(reinterpret_cast<const uint4*>(wrow[j] + c * 8));  // read once
      to_float8(*reinterpret_cast<const Vec<T, 8>*>(&u), wf[j]);
    }
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float xf[8];
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(x + m * K + c * 8));
      to_float8(*reinterpret_cast<const Vec<T, 8>*>(&u), xf);
#pragma unroll
      for (int j = 0; j < kFeatures; ++j)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[m][j] = fmaf(xf[i], wf[j][i], acc[m][j]);
    }
  }

#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int j = 0; j < kFeatures; ++j) {
      const float s = warp_sum(acc[m][j]);
      if (lane == 0) partial[warp][m * kFeatures + j] = s;
    }
  __syncthreads();
  if (tid < M * kFeatures) {
    const int m = tid / kFeatures, j = tid % kFeatures;
    if (n0 + j < N) {
      float s = 0.f;
#pragma unroll
      for (int k = 0; k < kWarps; ++k) s += partial[k][tid];
      O* o = out + m * N + n0 + j;
      if constexpr (std::is_same_v<O, float>) *o = ACC ? *o + s : s;
      else *o = from_f<O>(ACC ? to_f(*o) + s : s);
    }
  }
}

template <class T, class O, int M, bool ACC>
void launch_rows(const Tensor& x, const Tensor& w, Tensor out, const Stream& stream) {
  const int64_t N = w.dim(0), K = w.dim(1);
  launch_kernel(small_m_linear_kernel<T, O, M, ACC>, ceil_div(N, kFeatures), kThreads, 0, stream,
                x.ptr<const T>(), w.ptr<const T>(), N, K, out.ptr<O>());
}

template <class T, class O, bool ACC>
void launch_out(const Tensor& x, const Tensor& w, Tensor out, const Stream& stream) {
  switch (x.dim(0)) {
    case 1: launch_rows<T, O, 1, ACC>(x, w, out, stream); return;
    case 2: launch_rows<T, O, 2, ACC>(x, w, out, stream); return;
    case 3: launch_rows<T, O, 3, ACC>(x, w, out, stream); return;
    case 4: launch_rows<T, O, 4, ACC>(x, w, out, stream); return;
    case 5: launch_rows<T, O, 5, ACC>(x, w, out, stream); return;
    case 6: launch_rows<T, O, 6, ACC>(x, w, out, stream); return;
    case 7: launch_rows<T, O, 7, ACC>(x, w, out, stream); return;
    case 8: launch_rows<T, O, 8, ACC>(x, w, out, stream); return;
    default: throw_error("linear (small M): ", x.dim(0), " rows; at most ", kSmallLinearMaxRows);
  }
}

// Accumulation only into the activation type (the residual stream); F32 out for the logits.
template <class T>
void launch_typed(const Tensor& x, const Tensor& w, Tensor out, bool accumulate,
                  const Stream& stream) {
  if (accumulate) launch_out<T, T, true>(x, w, out, stream);
  else if (out.dtype == DType::F32) launch_out<T, float, false>(x, w, out, stream);
  else launch_out<T, T, false>(x, w, out, stream);
}

}  // namespace

bool small_m_linear_supported(const Tensor& x, const Tensor& w, const Tensor& out) {
  return (x.dtype == DType::BF16 || x.dtype == DType::F16) && w.dtype == x.dtype &&
         (out.dtype == x.dtype || out.dtype == DType::F32) && x.dim(0) >= 1 &&
         x.dim(0) <= kSmallLinearMaxRows && x.dim(1) > 0 && x.dim(1) % 8 == 0 &&
         reinterpret_cast<uintptr_t>(x.data) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
}

void launch_small_m_linear(const Tensor& x, const Tensor& w, Tensor out, bool accumulate,
                           const Stream& stream) {
  NANOVLLM_CHECK(small_m_linear_supported(x, w, out) && (!accumulate || out.dtype == x.dtype),
                 "linear (small M): unsupported operands");
  if (x.dtype == DType::BF16) launch_typed<__nv_bfloat16>(x, w, out, accumulate, stream);
  else launch_typed<__half>(x, w, out, accumulate, stream);
  check_launch("linear (small M)");
}

}  // namespace nanovllm::cuda
