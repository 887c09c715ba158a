// RMSNorm: one block per row, FP32 sums, 16-byte accesses.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace nanovllm::cuda {
namespace {

// x, out: [T, H] of T; weight: [H] of W (T or float), or null (unit). out may alias x.
template <class T, class W, int VEC>
__global__ void rms_norm_kernel(const T* x, const W* __restrict__ weight, float eps, int64_t H,
                                T* out) {
  start_after_previous_kernel();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * H;
  T* orow = out + row * H;
  float ss = 0.f;
  for (int64_t c = int64_t(threadIdx.x) * VEC; c < H; c += int64_t(blockDim.x) * VEC) {
    const Vec<T, VEC> v = load_vec<T, VEC>(xr + c);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      const float f = to_f(v.v[i]);
      ss += f * f;
    }
  }
  ss = block_sum(ss, scratch);
  const float inv = 1.f / sqrtf(ss / float(H) + eps);
  // The second pass re-reads what this same thread read in the first.
  for (int64_t c = int64_t(threadIdx.x) * VEC; c < H; c += int64_t(blockDim.x) * VEC) {
    const Vec<T, VEC> v = load_vec<T, VEC>(xr + c);
    Vec<T, VEC> o;
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      float w = 1.f;
      if (weight) {
        if constexpr (std::is_same_v<W, float>) w = weight[c + i];
        else w = to_f(weight[c + i]);
      }
      o.v[i] = from_f<T>(to_f(v.v[i]) * inv * w);
    }
    store_vec<T, VEC>(orow + c, o);
  }
}

template <class T, class W, int VEC>
void launch_typed(const Tensor& x, const Tensor& weight, float eps, Tensor out,
                  const Stream& stream) {
  const int64_t T_ = x.dim(0), H = x.dim(1);
  const int threads = int(std::min<int64_t>(1024, std::max<int64_t>(32, (H / VEC + 31) / 32 * 32)));
  launch_kernel(rms_norm_kernel<T, W, VEC>, unsigned(T_), threads, 0, stream, x.ptr<const T>(),
                weight.ptr<const W>(), eps, H, out.ptr<T>());
}

}  // namespace

void launch_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out,
                     const Stream& stream) {
  if (x.dim(0) == 0) return;
  dispatch_act(x.dtype, "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    const int vec = vec_width(sizeof(T), x.dim(1), {x.data, out.data});
    auto go = [&](auto wtag) {
      using W = decltype(wtag);
      if (vec == 1) launch_typed<T, W, 1>(x, weight, eps, out, stream);
      else launch_typed<T, W, 16 / sizeof(T)>(x, weight, eps, out, stream);
    };
    if (weight.dtype == DType::F32) go(float{});
    else go(T{});
  });
  check_launch("rms_norm");
}

}  // namespace nanovllm::cuda
