// SiLU x up (the gated MLP activation) and the bias add after a bias-less cuBLASLt product.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace nanovllm::cuda {
namespace {

// gate_up [T, 2I] -> out [T, I]; grid (T, ceil(I / (threads * VEC))). rms_x [T, rms_width] of
// T: the rows whose RMSNorm is pending (null: none).
template <class T, int VEC>
__global__ void silu_mul_kernel(const T* __restrict__ gate_up, int64_t I, T* __restrict__ out,
                                const T* __restrict__ rms_x, int64_t rms_width, float rms_eps) {
  start_after_previous_kernel();
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const float r = rms_x ? block_row_rms_factor(rms_x + t * rms_width, rms_width, rms_eps, scratch)
                        : 1.f;
  const int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * VEC;
  if (c >= I) return;
  const T* g = gate_up + t * 2 * I;
  Vec<T, VEC> gv = load_vec<T, VEC>(g + c);
  Vec<T, VEC> uv = load_vec<T, VEC>(g + I + c);
  Vec<T, VEC> o;
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    const float a = r * to_f(gv.v[i]);
    o.v[i] = from_f<T>(a / (1.f + __expf(-a)) * (r * to_f(uv.v[i])));
  }
  store_vec<T, VEC>(out + t * I + c, o);
}

// out [T, N] += bias [N] (bias of type B: T or float).
template <class T, class B>
__global__ void add_bias_kernel(const B* __restrict__ bias, int64_t N, T* __restrict__ out) {
  start_after_previous_kernel();
  const int64_t t = blockIdx.x;
  const int64_t n = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  float b;
  if constexpr (std::is_same_v<B, float>) b = bias[n];
  else b = to_f(bias[n]);
  out[t * N + n] = from_f<T>(to_f(out[t * N + n]) + b);
}

}  // namespace

void launch_silu_mul(const Tensor& gate_up, Tensor out, const Stream& stream,
                     const RowRms& pending) {
  const int64_t T_ = out.dim(0), I = out.dim(1);
  if (T_ == 0) return;
  dispatch_act(out.dtype, "silu_mul", [&](auto tag) {
    using T = decltype(tag);
    const T* rms_x = static_cast<const T*>(pending.x);
    const int vec = vec_width(sizeof(T), I, {gate_up.data, out.data});
    const int threads = 256;
    if (vec == 1) {
      dim3 grid(unsigned(T_), ceil_div(I, threads));
      launch_kernel(silu_mul_kernel<T, 1>, grid, threads, 0, stream, gate_up.ptr<const T>(), I,
                    out.ptr<T>(), rms_x, pending.width, pending.eps);
    } else {
      constexpr int V = 16 / sizeof(T);
      dim3 grid(unsigned(T_), ceil_div(I, threads * V));
      launch_kernel(silu_mul_kernel<T, V>, grid, threads, 0, stream, gate_up.ptr<const T>(), I,
                    out.ptr<T>(), rms_x, pending.width, pending.eps);
    }
  });
  check_launch("silu_mul");
}

void launch_add_bias(const Tensor& bias, Tensor out, const Stream& stream) {
  const int64_t T_ = out.dim(0), N = out.dim(1);
  if (T_ == 0) return;
  dispatch_act(out.dtype, "linear (bias)", [&](auto tag) {
    using T = decltype(tag);
    dim3 grid(unsigned(T_), ceil_div(N, 256));
    auto go = [&](auto btag) {
      using B = decltype(btag);
      launch_kernel(add_bias_kernel<T, B>, grid, 256, 0, stream, bias.ptr<const B>(), N,
                    out.ptr<T>());
    };
    if (bias.dtype == DType::F32) go(float{});
    else if (bias.dtype == DType::F16) go(__half{});
    else go(__nv_bfloat16{});
  });
  check_launch("linear (bias)");
}

}  // namespace nanovllm::cuda
