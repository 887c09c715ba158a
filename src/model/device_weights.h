#pragma once
// Uploads host float32 weights to a backend in the compute dtype and keeps the buffers alive.
#include <span>
#include <vector>

#include "backend/backend.h"

namespace nanovllm {

class DeviceWeights {
 public:
  explicit DeviceWeights(Backend& backend) : backend_(backend) {}

  // values: host float32, row-major in `shape`; stored on the device as `dtype`.
  Tensor upload(std::span<const float> values, DType dtype, std::initializer_list<int64_t> shape);
  // Uninitialized device memory of the given shape (activations, workspaces).
  Tensor allocate(DType dtype, std::initializer_list<int64_t> shape);
  int64_t total_bytes() const { return total_bytes_; }

 private:
  Backend& backend_;
  std::vector<Buffer> buffers_;
  int64_t total_bytes_ = 0;
};

}  // namespace nanovllm
