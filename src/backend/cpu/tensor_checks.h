#pragma once
// Input checks shared by the CPU ops: each failure names the op, the tensor and what was expected.
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"

namespace nanovllm::cpu {

inline void check_tensor(const Tensor& t, const char* op, const char* name, DType dtype,
                         int ndim) {
  NANOVLLM_CHECK(t.defined(), op, ": tensor '", name, "' is undefined");
  NANOVLLM_CHECK(t.device == Device::CPU, op, ": tensor '", name, "' must be on the CPU");
  NANOVLLM_CHECK(t.dtype == dtype, op, ": tensor '", name, "' must be ", dtype_name(dtype),
                 ", got ", dtype_name(t.dtype));
  NANOVLLM_CHECK(t.ndim == ndim, op, ": tensor '", name, "' must have ", ndim,
                 " dimensions, got ", t.shape_string());
}

inline void check_dim(const Tensor& t, int axis, int64_t expected, const char* op,
                      const char* name) {
  NANOVLLM_CHECK(t.dim(axis) == expected, op, ": tensor '", name, "' has shape ",
                 t.shape_string(), ", expected size ", expected, " in dimension ", axis);
}

}  // namespace nanovllm::cpu
