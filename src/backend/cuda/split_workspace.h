#pragma once
// Scratch of split-K decode attention: the splits' partial softmax states (floats) and one
// arrival counter per (sequence, KV head), which the last split to finish uses to know it is
// the one that merges. Counters are zero at rest (the merging split resets its own), so they
// live apart from the partials, which any shape may overwrite.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace nanovllm::cuda {

class SplitWorkspace {
 public:
  SplitWorkspace() = default;
  ~SplitWorkspace();
  SplitWorkspace(const SplitWorkspace&) = delete;
  SplitWorkspace& operator=(const SplitWorkspace&) = delete;

  // Room for `floats` partial floats and `counters` counters. Grows (at least doubling) only
  // outside graph capture; graphs captured earlier keep the old buffers, so those are retired
  // (freed with the workspace), never freed while a graph may replay them.
  void reserve(int64_t floats, int64_t counters, bool capturing, cudaStream_t stream);

  float* partials() const { return live_.partials; }
  int32_t* counters() const { return live_.counters; }

 private:
  struct Buffers {
    float* partials = nullptr;
    int32_t* counters = nullptr;
  };
  Buffers live_;
  int64_t floats_ = 0, counters_ = 0;
  std::vector<Buffers> retired_;
};

}  // namespace nanovllm::cuda
