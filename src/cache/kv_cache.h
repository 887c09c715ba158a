#pragma once
// Owns the paged KV cache memory of every layer on one backend and hands out the per-layer views
// (core/paged_kv.h) kernels take. Block bookkeeping lives in block_manager.h.
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "cache/kv_sizing.h"
#include "core/paged_kv.h"

namespace nanovllm {

class KvCache {
 public:
  KvCache(Backend& backend, const KvCacheShape& shape, int32_t block_size, KvDType dtype,
          int32_t num_blocks);

  const PagedKvLayer& layer(int32_t i) const { return layers_[i]; }
  const std::vector<PagedKvLayer>& layers() const { return layers_; }
  int32_t num_blocks() const { return num_blocks_; }
  KvDType dtype() const { return dtype_; }
  int64_t total_bytes() const { return total_bytes_; }

 private:
  KvDType dtype_;
  int32_t num_blocks_;
  int64_t total_bytes_ = 0;
  std::vector<Buffer> buffers_;  // per layer: K, V, and (quantized) K scales, V scales
  std::vector<PagedKvLayer> layers_;
};

}  // namespace nanovllm
