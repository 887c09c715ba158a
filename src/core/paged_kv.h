#pragma once
// The paged KV cache of one layer as kernels see it: plain pointers and sizes, passed by value.
// Backends never include src/cache; the cache module fills these in.
//
// Layout (nano-vllm's), for K and V alike:
//   values: [num_blocks, block_size, num_kv_heads, kv_head_bytes(dtype, head_dim)] bytes
//   scales: [num_blocks, block_size, num_kv_heads] float32 (quantized dtypes only, else null)
// A slot is block_id * block_size + offset_in_block; slot -1 means "do not store" (padding).
#include <cstdint>

#include "core/kv_dtype.h"

namespace nanovllm {

struct PagedKvLayer {
  void* k = nullptr;
  void* v = nullptr;
  float* k_scale = nullptr;
  float* v_scale = nullptr;
  KvDType dtype = KvDType::F32;
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;

  int64_t head_bytes() const { return kv_head_bytes(dtype, head_dim); }
  // Byte offset of (slot, head) in k or v; int64 because caches exceed 2 GiB.
  int64_t value_offset(int64_t slot, int32_t head) const {
    return (slot * num_kv_heads + head) * head_bytes();
  }
  // Element offset of (slot, head) in k_scale or v_scale.
  int64_t scale_offset(int64_t slot, int32_t head) const { return slot * num_kv_heads + head; }
};

}  // namespace nanovllm
