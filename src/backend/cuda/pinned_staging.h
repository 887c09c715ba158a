#pragma once
// Host-to-device copies through a ring of page-locked host memory. cudaMemcpyAsync from pageable
// memory makes the driver stage the bytes itself and return only once the source is consumed (a
// blocking copy per step input); from pinned memory the copy is a DMA the stream runs
// asynchronously, and the host only pays a memcpy into the ring.
#include <cuda_runtime.h>

#include <cstddef>

namespace nanovllm::cuda {

class PinnedStaging {
 public:
  // capacity bytes of page-locked memory, copies enqueued on `stream`.
  PinnedStaging(size_t capacity, cudaStream_t stream);
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // Enqueues a copy of `bytes` host bytes to device_dst; src may be reused as soon as this
  // returns. Copies larger than a quarter of the ring (weights at load time) go direct.
  void copy_to_device(void* device_dst, const void* host_src, size_t bytes);

  // Page-locked scratch of at least `bytes` for device-to-host results (grown as needed; the
  // caller synchronizes the stream before reading it and before asking again).
  void* readback(size_t bytes);

 private:
  cudaStream_t stream_;
  char* ring_ = nullptr;
  size_t capacity_ = 0;
  size_t head_ = 0;  // next free byte; everything before it may still be in flight
  void* readback_ = nullptr;
  size_t readback_bytes_ = 0;
};

}  // namespace nanovllm::cuda
