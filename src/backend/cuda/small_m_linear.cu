// out[M, N] = x[M, K] . w[N, K]^T for a few rows (M <= kSmallLinearMaxRows: decode at small
// batch, the sampled rows' LM head). The product is a stream over the weights, where cuBLASLt's
// heuristic picks GEMM tiles that leave most of each tile idle (~0.26 TB/s measured for M = 1).
// A CTA owns kFeatures consecutive output features; its threads walk K in 16-byte chunks of w
// (8 elements), each chunk of x loaded once and used for all kFeatures features from registers.
// FP32 accumulation, reduced across the CTA through shared memory. SmallMFusion (kernels.h) folds
// the decode layer's RMSNorm, residual add and SiLU x up into it. The weights never depend on the
// previous kernel, so each thread's weight chunks are prefetched into L2 before waiting on it.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace nanovllm::cuda {
namespace {

using Input = SmallMFusion::Input;
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kFeatures = 4;  // output features per CTA

template <class T>
__device__ __forceinline__ void to_float8(const uint4& u, float f[8]) {
  const Vec<T, 8> v = *reinterpret_cast<const Vec<T, 8>*>(&u);
#pragma unroll
  for (int i = 0; i < 8; ++i) f[i] = to_f(v.v[i]);
}

__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
}

// Elements [8c, 8c + 8) of the product's input row as floats. Plain and kRmsNorm read x itself
// (kRmsNorm adds their squares to ss; the norm weight is applied by the caller), kSiluMul computes
// silu(gate) * up from the row's two halves (K elements apart) and rounds it to T.
template <class T, Input IN>
__device__ __forceinline__ void input_chunk(const T* row, int64_t K, int64_t c, float xf[8],
                                            float& ss) {
  if constexpr (IN == Input::kSiluMul) {
    float g[8], u[8];
    to_float8<T>(__ldg(reinterpret_cast<const uint4*>(row + c * 8)), g);
    to_float8<T>(__ldg(reinterpret_cast<const uint4*>(row + K + c * 8)), u);
#pragma unroll
    for (int i = 0; i < 8; ++i) xf[i] = to_f(from_f<T>(g[i] / (1.f + __expf(-g[i])) * u[i]));
  } else {
    to_float8<T>(__ldg(reinterpret_cast<const uint4*>(row + c * 8)), xf);
    if constexpr (IN == Input::kRmsNorm) {
#pragma unroll
      for (int i = 0; i < 8; ++i) ss = fmaf(xf[i], xf[i], ss);
    }
  }
}

// grid ceil(N / kFeatures); x [M, x_stride] of T (the product's input rows, K wide, or gate_up
// rows 2K wide for kSiluMul), w [N, K] of T, norm_w [K] of T or null (kRmsNorm; null: a unit
// weight), out [M, N] of O (T or float; read first when ACC); K % 8 == 0.
template <class T, class O, int M, Input IN, bool ACC>
__global__ void __launch_bounds__(kThreads) small_m_linear_kernel(
    const T* __restrict__ x, int64_t x_stride, const T* __restrict__ norm_w, float eps,
    const T* __restrict__ w, int64_t N, int64_t K, O* __restrict__ out) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t n0 = int64_t(blockIdx.x) * kFeatures;
  const T* wrow[kFeatures];
#pragma unroll
  for (int j = 0; j < kFeatures; ++j) wrow[j] = w + min(n0 + j, N - 1) * K;  // past N: unused
  const int64_t chunks = K / 8;
  for (int64_t c = tid; c < chunks; c += kThreads)
#pragma unroll
    for (int j = 0; j < kFeatures; ++j) prefetch_l2(wrow[j] + c * 8);
  start_after_previous_kernel();
  __shared__ float partial[kWarps][M * kFeatures];
  __shared__ float partial_ss[kWarps][M];

  float acc[M][kFeatures];
  float ss[M];
#pragma unroll
  for (int m = 0; m < M; ++m) {
    ss[m] = 0.f;
#pragma unroll
    for (int j = 0; j < kFeatures; ++j) acc[m][j] = 0.f;
  }

#pragma unroll 2
  for (int64_t c = tid; c < chunks; c += kThreads) {
    float wf[kFeatures][8];
#pragma unroll
    for (int j = 0; j < kFeatures; ++j)
      to_float8<T>(__ldcs(reinterpret_cast<const uint4*>(wrow[j] + c * 8)), wf[j]);  // read once
    float nw[8];
    const bool weighted = IN == Input::kRmsNorm && norm_w != nullptr;
    if (weighted) to_float8<T>(__ldg(reinterpret_cast<const uint4*>(norm_w + c * 8)), nw);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float xf[8];
      input_chunk<T, IN>(x + m * x_stride, K, c, xf, ss[m]);
      if (weighted) {
#pragma unroll
        for (int i = 0; i < 8; ++i) xf[i] *= nw[i];
      }
#pragma unroll
      for (int j = 0; j < kFeatures; ++j)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[m][j] = fmaf(xf[i], wf[j][i], acc[m][j]);
    }
  }

#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int j = 0; j < kFeatures; ++j) {
      const float s = warp_sum(acc[m][j]);
      if (lane == 0) partial[warp][m * kFeatures + j] = s;
    }
    if constexpr (IN == Input::kRmsNorm) {
      const float s = warp_sum(ss[m]);
      if (lane == 0) partial_ss[warp][m] = s;
    }
  }
  __syncthreads();
  if (tid < M * kFeatures) {
    const int m = tid / kFeatures, j = tid % kFeatures;
    if (n0 + j < N) {
      float s = 0.f;
#pragma unroll
      for (int k = 0; k < kWarps; ++k) s += partial[k][tid];
      if constexpr (IN == Input::kRmsNorm) {
        float sq = 0.f;
#pragma unroll
        for (int k = 0; k < kWarps; ++k) sq += partial_ss[k][m];
        s *= 1.f / sqrtf(sq / float(K) + eps);
      }
      O* o = out + m * N + n0 + j;
      if constexpr (std::is_same_v<O, float>) {
        *o = ACC ? *o + s : s;
      } else {
        *o = from_f<O>(ACC ? to_f(*o) + s : s);
      }
    }
  }
}

template <class T, class O, Input IN, bool ACC>
void launch_fused(const Tensor& x, const Tensor& w, const SmallMFusion& f, Tensor out,
                  const Stream& stream) {
  const int64_t N = w.dim(0), K = w.dim(1);
  const T* norm_w =
      IN == Input::kRmsNorm && f.norm_weight ? f.norm_weight->ptr<const T>() : nullptr;
  auto go = [&](auto rows) {
    constexpr int M = decltype(rows)::value;
    launch_kernel(small_m_linear_kernel<T, O, M, IN, ACC>, ceil_div(N, kFeatures), kThreads, 0,
                  stream, x.ptr<const T>(), x.dim(1), norm_w, f.eps, w.ptr<const T>(), N, K,
                  out.ptr<O>());
  };
  switch (x.dim(0)) {
    case 1: go(std::integral_constant<int, 1>{}); return;
    case 2: go(std::integral_constant<int, 2>{}); return;
    case 3: go(std::integral_constant<int, 3>{}); return;
    case 4: go(std::integral_constant<int, 4>{}); return;
    case 5: go(std::integral_constant<int, 5>{}); return;
    case 6: go(std::integral_constant<int, 6>{}); return;
    case 7: go(std::integral_constant<int, 7>{}); return;
    case 8: go(std::integral_constant<int, 8>{}); return;
    default: throw_error("linear (small M): ", x.dim(0), " rows; at most ", kSmallLinearMaxRows);
  }
}

// The combinations the backend uses: plain products (out T or F32), the residual adds of o_proj
// (plain input) and down (SiLU input), the normed inputs of qkv and gate_up.
template <class T>
void launch_typed(const Tensor& x, const Tensor& w, const SmallMFusion& f, Tensor out,
                  const Stream& stream) {
  if (f.input == Input::kPlain && !f.accumulate) {
    if (out.dtype == DType::F32) launch_fused<T, float, Input::kPlain, false>(x, w, f, out, stream);
    else launch_fused<T, T, Input::kPlain, false>(x, w, f, out, stream);
  } else if (f.input == Input::kPlain) {
    launch_fused<T, T, Input::kPlain, true>(x, w, f, out, stream);
  } else if (f.input == Input::kRmsNorm && !f.accumulate) {
    launch_fused<T, T, Input::kRmsNorm, false>(x, w, f, out, stream);
  } else if (f.input == Input::kSiluMul && f.accumulate) {
    launch_fused<T, T, Input::kSiluMul, true>(x, w, f, out, stream);
  } else {
    throw_error("linear (small M): unsupported fusion");
  }
}

}  // namespace

bool small_m_linear_supported(const Tensor& x, const Tensor& w, const Tensor& out) {
  return (x.dtype == DType::BF16 || x.dtype == DType::F16) && w.dtype == x.dtype &&
         (out.dtype == x.dtype || out.dtype == DType::F32) && x.dim(0) >= 1 &&
         x.dim(0) <= kSmallLinearMaxRows && x.dim(1) > 0 && x.dim(1) % 8 == 0 &&
         reinterpret_cast<uintptr_t>(x.data) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(w.data) % 16 == 0;
}

void launch_small_m_linear(const Tensor& x, const Tensor& w, Tensor out, const SmallMFusion& fusion,
                           const Stream& stream) {
  NANOVLLM_CHECK(small_m_linear_supported(x, w, out) && w.dim(1) % 8 == 0 &&
                     x.dim(1) == (fusion.input == Input::kSiluMul ? 2 : 1) * w.dim(1) &&
                     (!fusion.accumulate || out.dtype == x.dtype),
                 "linear (small M): unsupported operands");
  if (fusion.input == Input::kRmsNorm && fusion.norm_weight && fusion.norm_weight->defined())
    NANOVLLM_CHECK(fusion.norm_weight->dtype == x.dtype &&
                       fusion.norm_weight->numel() == w.dim(1) &&
                       reinterpret_cast<uintptr_t>(fusion.norm_weight->data) % 16 == 0,
                   "linear (small M): the norm weight must be [K] in the activation dtype");
  if (x.dtype == DType::BF16) launch_typed<__nv_bfloat16>(x, w, fusion, out, stream);
  else launch_typed<__half>(x, w, fusion, out, stream);
  check_launch("linear (small M)");
}

}  // namespace nanovllm::cuda
