// Row gathers: embedding lookup and gather_rows (the rows whose logits are wanted).
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace nanovllm::cuda {
namespace {

// One block per output row; VEC elements (16 bytes when aligned) per access.
template <class T, int VEC>
__global__ void gather_rows_kernel(const T* __restrict__ src, int64_t src_rows, int64_t cols,
                                   const int32_t* __restrict__ indices, T* __restrict__ out) {
  start_after_previous_kernel();
  const int64_t r = blockIdx.x;
  const int32_t idx = indices[r];
  const bool valid = idx >= 0 && idx < src_rows;
  const T* s = src + int64_t(valid ? idx : 0) * cols;
  T* o = out + r * cols;
  for (int64_t c = int64_t(threadIdx.x) * VEC; c < cols; c += int64_t(blockDim.x) * VEC) {
    Vec<T, VEC> v;
    if (valid) {
      v = load_vec<T, VEC>(s + c);
    } else {
#pragma unroll
      for (int i = 0; i < VEC; ++i) v.v[i] = from_f<T>(0.f);
    }
    store_vec<T, VEC>(o + c, v);
  }
}

}  // namespace

void launch_gather_rows(const Tensor& src, const Tensor& indices, Tensor out,
                        const Stream& stream) {
  const int64_t rows = out.dim(0), cols = out.dim(1);
  if (rows == 0) return;
  dispatch_act(src.dtype, "gather_rows", [&](auto tag) {
    using T = decltype(tag);
    const int vec = vec_width(sizeof(T), cols, {src.data, out.data});
    const int threads = int(std::min<int64_t>(256, std::max<int64_t>(32, (cols / vec + 31) / 32 * 32)));
    const T* s = src.ptr<const T>();
    if (vec == 1)
      launch_kernel(gather_rows_kernel<T, 1>, unsigned(rows), threads, 0, stream, s, src.dim(0),
                    cols, indices.ptr<const int32_t>(), out.ptr<T>());
    else
      launch_kernel(gather_rows_kernel<T, 16 / sizeof(T)>, unsigned(rows), threads, 0, stream,
                    s, src.dim(0), cols, indices.ptr<const int32_t>(), out.ptr<T>());
  });
  check_launch("gather_rows");
}

}  // namespace nanovllm::cuda
