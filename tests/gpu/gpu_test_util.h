#pragma once
// Helpers of the CUDA-vs-CPU op tests: device arrays filled from host floats in any activation
// dtype, read back as floats, poisoned (NaN) before each run, and the normalized error
// ||got - want|| / ||want||; `using namespace gpu_test` also brings the random-case helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "backend/cuda/cuda_backend.h"
#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"

#define NANOVLLM_SKIP_WITHOUT_GPU() \
  if (!::nanovllm::cuda_device_present()) GTEST_SKIP() << "no CUDA device"

namespace nanovllm::gpu_test {

// The random-case helpers every GPU test uses (common/backend_op_cases.h).
using testing::host_tensor;
using testing::random_floats;
using testing::Rng;

// v rounded to what dtype can hold (so the CPU reference sees exactly the GPU's inputs).
inline std::vector<float> rounded(DType t, std::vector<float> v) {
  for (float& x : v) x = round_to_dtype(t, x);
  return v;
}

// Bytes of `v` in dtype t (F32, F16, BF16).
inline std::vector<uint8_t> encode(DType t, const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::F32) {
      std::memcpy(out.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = t == DType::BF16 ? float_to_bf16(v[i]) : float_to_f16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}
inline std::vector<float> decode(DType t, const uint8_t* p, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (t == DType::F32) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = t == DType::BF16 ? bf16_to_float(h) : f16_to_float(h);
    }
  }
  return out;
}

// A device array owned by the test.
struct DeviceArray {
  Buffer buffer;
  Tensor tensor;
};

class Gpu {
 public:
  Gpu() : backend_(make_cuda_backend(0)) {}
  Backend& backend() { return *backend_; }
  CudaBackend& cuda() { return static_cast<CudaBackend&>(*backend_); }

  DeviceArray bytes(const void* data, size_t n) {
    DeviceArray a;
    a.buffer = backend_->allocate(n);
    if (data && n) backend_->copy_from_host(a.buffer.data(), data, n);
    return a;
  }
  // Floats stored as dtype t with the given shape.
  DeviceArray floats(DType t, const std::vector<float>& v, std::initializer_list<int64_t> dims) {
    std::vector<uint8_t> enc = encode(t, v);
    DeviceArray a = bytes(enc.data(), enc.size());
    a.tensor = Tensor(a.buffer.data(), t, nanovllm::Device::CUDA, dims);
    return a;
  }
  template <class I>
  DeviceArray ints(const std::vector<I>& v, std::initializer_list<int64_t> dims) {
    DeviceArray a = bytes(v.data(), v.size() * sizeof(I));
    a.tensor = Tensor(a.buffer.data(), sizeof(I) == 4 ? DType::I32 : DType::I64,
                      nanovllm::Device::CUDA, dims);
    return a;
  }
  // An output of dtype t, filled with NaN so that any element the op misses fails the check.
  DeviceArray poisoned(DType t, std::initializer_list<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return floats(t, std::vector<float>(size_t(n), NAN), dims);
  }
  std::vector<float> read(const DeviceArray& a) {
    std::vector<uint8_t> raw(a.tensor.nbytes());
    backend_->copy_to_host(raw.data(), a.tensor.data, raw.size());
    return decode(a.tensor.dtype, raw.data(), size_t(a.tensor.numel()));
  }
  std::vector<uint8_t> read_bytes(const void* p, size_t n) {
    std::vector<uint8_t> raw(n);
    backend_->copy_to_host(raw.data(), p, n);
    return raw;
  }

 private:
  std::unique_ptr<Backend> backend_;
};

template <class A, class B>
double normalized_error(const std::vector<A>& got, const std::vector<B>& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Per-dtype tolerance of a normalized error: output rounding dominates in 16-bit types.
inline double tolerance(DType t, double f32 = 1e-5) {
  return t == DType::BF16 ? 1e-2 : t == DType::F16 ? 2e-3 : f32;
}

// The residual ops checked twice: the whole residual after the op, and what the op added to it
// (so that a wrong product cannot hide behind a large residual).
inline void expect_residual_matches(const std::vector<float>& got, const std::vector<float>& want,
                                    const std::vector<float>& before, DType dt) {
  ASSERT_TRUE(all_finite(got));
  EXPECT_LT(normalized_error(got, want), tolerance(dt, 2e-6)) << "residual";
  std::vector<float> got_delta(got.size()), want_delta(got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    got_delta[i] = got[i] - before[i];
    want_delta[i] = want[i] - before[i];
  }
  EXPECT_LT(normalized_error(got_delta, want_delta), tolerance(dt, 2e-6)) << "added part";
}

inline const char* dname(DType t) { return t == DType::BF16 ? "bf16" : t == DType::F16 ? "f16" : "f32"; }

constexpr DType kActDtypes[] = {DType::F32, DType::F16, DType::BF16};

}  // namespace nanovllm::gpu_test
