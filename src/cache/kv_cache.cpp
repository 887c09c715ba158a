#include "cache/kv_cache.h"

#include "core/error.h"

namespace nanovllm {

KvCache::KvCache(Backend& backend, const KvCacheShape& shape, int32_t block_size, KvDType dtype,
                 int32_t num_blocks)
    : dtype_(dtype), num_blocks_(num_blocks) {
  NANOVLLM_CHECK(num_blocks > 0, "KV cache: no memory left for even one block of ",
                 block_size, " tokens (num_kvcache_blocks or memory budget too small)");
  const int64_t slots = int64_t(num_blocks) * block_size;
  const int64_t value_bytes = slots * shape.num_kv_heads * kv_head_bytes(dtype, shape.head_dim);
  const int64_t scale_bytes = kv_is_quantized(dtype) ? slots * shape.num_kv_heads * 4 : 0;
  auto take = [&](int64_t bytes) -> void* {
    if (bytes == 0) return nullptr;
    buffers_.push_back(backend.allocate(size_t(bytes)));
    total_bytes_ += bytes;
    return buffers_.back().data();
  };
  for (int32_t i = 0; i < shape.num_layers; ++i) {
    PagedKvLayer layer;
    layer.k = take(value_bytes);
    layer.v = take(value_bytes);
    layer.k_scale = static_cast<float*>(take(scale_bytes));
    layer.v_scale = static_cast<float*>(take(scale_bytes));
    layer.dtype = dtype;
    layer.num_blocks = num_blocks;
    layer.block_size = block_size;
    layer.num_kv_heads = shape.num_kv_heads;
    layer.head_dim = shape.head_dim;
    layers_.push_back(layer);
  }
}

}  // namespace nanovllm
