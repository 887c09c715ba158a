#include "model/device_weights.h"

#include "core/error.h"
#include "core/half.h"

namespace nanovllm {

Tensor DeviceWeights::allocate(DType dtype, std::initializer_list<int64_t> shape) {
  Tensor t(nullptr, dtype, backend_.device(), shape);
  buffers_.push_back(backend_.allocate(std::max<size_t>(t.nbytes(), 1)));
  total_bytes_ += int64_t(t.nbytes());
  t.data = buffers_.back().data();
  return t;
}

Tensor DeviceWeights::upload(std::span<const float> values, DType dtype,
                             std::initializer_list<int64_t> shape) {
  Tensor t = allocate(dtype, shape);
  NANOVLLM_CHECK(int64_t(values.size()) == t.numel(), "weights: ", values.size(),
                 " values for shape ", t.shape_string());
  switch (dtype) {
    case DType::F32:
      backend_.copy_from_host(t.data, values.data(), t.nbytes());
      backend_.synchronize();  // the caller's host vector may die after we return
      break;
    case DType::BF16:
    case DType::F16: {
      std::vector<uint16_t> half(values.size());
      for (size_t i = 0; i < values.size(); ++i)
        half[i] = dtype == DType::BF16 ? float_to_bf16(values[i]) : float_to_f16(values[i]);
      backend_.copy_from_host(t.data, half.data(), t.nbytes());
      backend_.synchronize();  // the host staging vector dies here
      break;
    }
    default:
      throw_error("weights: cannot store weights as ", dtype_name(dtype));
  }
  return t;
}

}  // namespace nanovllm
