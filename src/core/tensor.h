#pragma once
// A non-owning view of a contiguous row-major array on one device, and the owning buffer that
// backends hand out. Ops take views; models and caches keep the buffers alive.
#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>

#include "core/dtype.h"

namespace nanovllm {

enum class Device : uint8_t { CPU, CUDA };

struct Tensor {
  static constexpr int kMaxDims = 4;

  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  std::array<int64_t, kMaxDims> shape{};
  int ndim = 0;

  Tensor() = default;
  Tensor(void* data, DType dtype, Device device, std::initializer_list<int64_t> dims);

  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  int64_t numel() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  bool defined() const { return data != nullptr; }

  template <class T>
  T* ptr() const { return static_cast<T*>(data); }

  // The same memory seen with another shape of equal element count.
  Tensor reshape(std::initializer_list<int64_t> dims) const;
  // Rows [begin, begin + count) along dimension 0 (contiguous, so still a plain view).
  Tensor rows(int64_t begin, int64_t count) const;
  std::string shape_string() const;
};

// Owns device (or host) memory; the deleter is the allocating backend's. Move-only.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t bytes, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  void reset();

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*)> release_;
};

}  // namespace nanovllm
