#include "cache/kv_sizing.h"

#include "core/error.h"

namespace nanovllm {
namespace {

void check_shape(const KvCacheShape& s) {
  NANOVLLM_CHECK(s.num_layers > 0 && s.num_kv_heads > 0 && s.head_dim > 0,
                 "KV cache sizing: num_layers, num_kv_heads and head_dim must be positive, got ",
                 s.num_layers, ", ", s.num_kv_heads, ", ", s.head_dim);
}

void check_block_size(int32_t block_size) {
  NANOVLLM_CHECK(block_size > 0, "KV cache sizing: block_size must be positive, got ", block_size);
}

}  // namespace

int64_t kv_bytes_per_token(const KvCacheShape& shape, KvDType dtype) {
  check_shape(shape);
  const int64_t per_head = kv_head_bytes(dtype, shape.head_dim) + kv_scale_bytes(dtype);
  return int64_t{2} * shape.num_layers * shape.num_kv_heads * per_head;  // 2: K and V
}

int64_t kv_bytes_per_token(int32_t num_layers, int32_t num_kv_heads, int32_t head_dim, KvDType dtype) {
  return kv_bytes_per_token(KvCacheShape{num_layers, num_kv_heads, head_dim}, dtype);
}

int64_t kv_bytes_per_block(int32_t block_size, const KvCacheShape& shape, KvDType dtype) {
  check_block_size(block_size);
  return block_size * kv_bytes_per_token(shape, dtype);
}

int64_t num_blocks_for_budget(int64_t budget_bytes, int32_t block_size, const KvCacheShape& shape,
                              KvDType dtype) {
  NANOVLLM_CHECK(budget_bytes >= 0, "KV cache sizing: budget must not be negative, got ", budget_bytes,
                 " bytes");
  return budget_bytes / kv_bytes_per_block(block_size, shape, dtype);
}

int64_t blocks_per_sequence(int64_t seq_len, int32_t block_size) {
  check_block_size(block_size);
  NANOVLLM_CHECK(seq_len > 0, "KV cache sizing: sequence length must be positive, got ", seq_len);
  return (seq_len + block_size - 1) / block_size;
}

KvMemoryEstimate estimate_kv_memory(const KvCacheShape& shape, KvDType dtype, KvDType reference,
                                    int64_t num_blocks, int32_t block_size, int64_t seq_len) {
  NANOVLLM_CHECK(num_blocks >= 0, "KV cache estimate: number of blocks must not be negative, got ",
                 num_blocks);
  constexpr double kMiB = 1024.0 * 1024.0;
  KvMemoryEstimate e;
  e.dtype = dtype;
  e.reference = reference;
  e.bytes_per_token = kv_bytes_per_token(shape, dtype);
  e.reference_bytes_per_token = kv_bytes_per_token(shape, reference);
  e.block_size = block_size;
  e.num_blocks = num_blocks;
  e.total_bytes = num_blocks * kv_bytes_per_block(block_size, shape, dtype);
  e.reference_total_bytes = num_blocks * kv_bytes_per_block(block_size, shape, reference);
  e.total_mib = static_cast<double>(e.total_bytes) / kMiB;
  e.reference_total_mib = static_cast<double>(e.reference_total_bytes) / kMiB;
  e.saving = 1.0 - static_cast<double>(e.bytes_per_token) / static_cast<double>(e.reference_bytes_per_token);
  e.seq_len = seq_len;
  e.blocks_per_sequence = blocks_per_sequence(seq_len, block_size);
  e.sequences_that_fit = num_blocks / e.blocks_per_sequence;
  return e;
}

KvMemoryEstimate estimate_kv_memory_for_budget(const KvCacheShape& shape, KvDType dtype,
                                               KvDType reference, int64_t budget_bytes,
                                               int32_t block_size, int64_t seq_len) {
  return estimate_kv_memory(shape, dtype, reference,
                            num_blocks_for_budget(budget_bytes, block_size, shape, dtype), block_size,
                            seq_len);
}

}  // namespace nanovllm
