#pragma once
// Device-side helpers shared by the kernels: activation dtype traits (float, half, bfloat16 with
// float conversion), 16-byte vectors, warp/block reductions and the dispatch of a runtime DType
// onto a template parameter.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace nanovllm::cuda {

template <class T>
struct Act;
template <>
struct Act<float> {
  __device__ __forceinline__ static float to_float(float x) { return x; }
  __device__ __forceinline__ static float from_float(float x) { return x; }
};
template <>
struct Act<__half> {
  __device__ __forceinline__ static float to_float(__half x) { return __half2float(x); }
  __device__ __forceinline__ static __half from_float(float x) { return __float2half_rn(x); }
};
template <>
struct Act<__nv_bfloat16> {
  __device__ __forceinline__ static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
  __device__ __forceinline__ static __nv_bfloat16 from_float(float x) {
    return __float2bfloat16_rn(x);
  }
};

template <class T>
__device__ __forceinline__ float to_f(T x) { return Act<T>::to_float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x) { return Act<T>::from_float(x); }

// N elements of T moved as one aligned access (16 bytes when N * sizeof(T) == 16).
template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <class T, int N>
__device__ __forceinline__ Vec<T, N> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, N>*>(p);
}
template <class T, int N>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, N>& v) {
  *reinterpret_cast<Vec<T, N>*>(p) = v;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// scratch: >= 32 floats of shared memory.
__device__ __forceinline__ float block_sum(float x, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  x = warp_sum(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < nwarps ? scratch[lane] : 0.f;
  return warp_sum(x);
}

// 1 / sqrt(mean(row^2) + eps) of `width` elements, computed by the whole block (blockDim.x a
// multiple of 32); every thread gets it. scratch: >= 32 floats of shared memory.
template <class T>
__device__ __forceinline__ float block_row_rms_factor(const T* row, int64_t width, float eps,
                                                      float* scratch) {
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    const float f = to_f(row[i]);
    ss = fmaf(f, f, ss);
  }
  ss = block_sum(ss, scratch);
  return 1.f / sqrtf(ss / float(width) + eps);
}

// Calls f(T{}) with T the device type of an activation dtype (F32, F16, BF16).
template <class F>
void dispatch_act(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); return;
    case DType::F16: f(__half{}); return;
    case DType::BF16: f(__nv_bfloat16{}); return;
    default: throw_error(op, ": activation dtype must be float32, float16 or bfloat16, got ",
                         dtype_name(t));
  }
}

// Elements per 16-byte vector when every row start and the row length allow it, else 1.
inline int vec_width(size_t elem_size, int64_t row_len, std::initializer_list<const void*> ptrs) {
  const int w = int(16 / elem_size);
  if (row_len % w != 0) return 1;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return 1;
  return w;
}

inline unsigned ceil_div(int64_t a, int64_t b) { return unsigned((a + b - 1) / b); }

}  // namespace nanovllm::cuda
