#pragma once
// How many bytes the paged KV cache needs: per token, per block, per budget. Quantized dtypes count
// one FP32 scale per (token, KV head) for K and one for V, so block counts at a budget are honest.
#include <cstdint>

#include "core/kv_dtype.h"

namespace nanovllm {

// The model dimensions that size the cache.
struct KvCacheShape {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
};

// K and V of one token over all layers, scales included.
int64_t kv_bytes_per_token(int32_t num_layers, int32_t num_kv_heads, int32_t head_dim, KvDType dtype);
int64_t kv_bytes_per_token(const KvCacheShape& shape, KvDType dtype);
// One block of block_size tokens over all layers.
int64_t kv_bytes_per_block(int32_t block_size, const KvCacheShape& shape, KvDType dtype);
// Whole blocks that fit in budget_bytes (0 when not even one fits).
int64_t num_blocks_for_budget(int64_t budget_bytes, int32_t block_size, const KvCacheShape& shape,
                              KvDType dtype);
// Blocks one sequence of seq_len tokens occupies.
int64_t blocks_per_sequence(int64_t seq_len, int32_t block_size);

// The estimator (the proposal's estimate_memory_savings()): a cache of num_blocks blocks in `dtype`
// against the same blocks in `reference` (the model dtype).
struct KvMemoryEstimate {
  KvDType dtype = KvDType::BF16;
  KvDType reference = KvDType::BF16;
  int64_t bytes_per_token = 0;
  int64_t reference_bytes_per_token = 0;
  int32_t block_size = 0;
  int64_t num_blocks = 0;
  int64_t total_bytes = 0;            // num_blocks * block_size * bytes_per_token
  int64_t reference_total_bytes = 0;  // the same blocks in the reference dtype
  double total_mib = 0;               // MB as the proposal counts it: 2^20 bytes
  double reference_total_mib = 0;
  double saving = 0;  // 1 - total / reference_total (0.484 for INT8 vs BF16 at head_dim 128)
  int64_t seq_len = 0;
  int64_t blocks_per_sequence = 0;
  int64_t sequences_that_fit = 0;  // num_blocks / blocks_per_sequence
};

KvMemoryEstimate estimate_kv_memory(const KvCacheShape& shape, KvDType dtype, KvDType reference,
                                    int64_t num_blocks, int32_t block_size, int64_t seq_len);
// The same, with as many blocks of `dtype` as fit in budget_bytes.
KvMemoryEstimate estimate_kv_memory_for_budget(const KvCacheShape& shape, KvDType dtype,
                                               KvDType reference, int64_t budget_bytes,
                                               int32_t block_size, int64_t seq_len);

}  // namespace nanovllm
