#include "backend/cuda/pinned_staging.h"

#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace nanovllm::cuda {

namespace {
constexpr size_t kAlign = 256;  // each staged copy starts on its own 256-byte boundary
}

PinnedStaging::PinnedStaging(size_t capacity, cudaStream_t stream)
    : stream_(stream), capacity_(capacity) {
  check_cuda(cudaMallocHost(reinterpret_cast<void**>(&ring_), capacity_),
             "allocating the pinned staging ring");
}

PinnedStaging::~PinnedStaging() {
  if (stream_) cudaStreamSynchronize(stream_);
  cudaFreeHost(ring_);
  cudaFreeHost(readback_);
}

void PinnedStaging::copy_to_device(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return;
  if (bytes > capacity_ / 4) {
    check_cuda(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_),
               "copy_from_host (direct)");
    return;
  }
  if (head_ + bytes > capacity_) {
    // A new lap overwrites bytes whose copies were enqueued on this stream one lap ago: wait
    // for them. A lap is many steps long and each step ends synchronized, so this rarely waits.
    check_cuda(cudaStreamSynchronize(stream_), "pinned staging (wrap)");
    head_ = 0;
  }
  char* staged = ring_ + head_;
  std::memcpy(staged, host_src, bytes);
  check_cuda(cudaMemcpyAsync(device_dst, staged, bytes, cudaMemcpyHostToDevice, stream_),
             "copy_from_host (pinned)");
  head_ = (head_ + bytes + kAlign - 1) / kAlign * kAlign;
}

void* PinnedStaging::readback(size_t bytes) {
  if (bytes > readback_bytes_) {
    check_cuda(cudaStreamSynchronize(stream_), "pinned readback (grow)");
    cudaFreeHost(readback_);
    readback_ = nullptr;
    readback_bytes_ = 0;
    check_cuda(cudaMallocHost(&readback_, bytes), "allocating the pinned readback buffer");
    readback_bytes_ = bytes;
  }
  return readback_;
}

}  // namespace nanovllm::cuda
