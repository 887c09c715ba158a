#include "core/tensor.h"

#include <sstream>

#include "core/error.h"

namespace nanovllm {

Tensor::Tensor(void* data_, DType dtype_, Device device_, std::initializer_list<int64_t> dims)
    : data(data_), dtype(dtype_), device(device_) {
  NANOVLLM_CHECK(dims.size() <= kMaxDims, "tensor: at most ", kMaxDims, " dimensions");
  for (int64_t d : dims) shape[ndim++] = d;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

Tensor Tensor::reshape(std::initializer_list<int64_t> dims) const {
  Tensor t(data, dtype, device, dims);
  NANOVLLM_CHECK(t.numel() == numel(), "tensor: cannot reshape ", shape_string(), " to ",
                 t.shape_string());
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t count) const {
  NANOVLLM_CHECK(ndim >= 1 && begin >= 0 && begin + count <= shape[0], "tensor: rows [", begin,
                 ", ", begin + count, ") out of ", shape_string());
  Tensor t = *this;
  int64_t row_elems = shape[0] == 0 ? 0 : numel() / shape[0];
  t.data = static_cast<char*>(data) + size_t(begin * row_elems) * dtype_size(dtype);
  t.shape[0] = count;
  return t;
}

std::string Tensor::shape_string() const {
  std::ostringstream out;
  out << '[';
  for (int i = 0; i < ndim; ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    bytes_ = other.bytes_;
    release_ = std::move(other.release_);
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void Buffer::reset() {
  if (data_ && release_) release_(data_);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace nanovllm
