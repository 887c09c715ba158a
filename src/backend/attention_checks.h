#pragma once
// The device-independent checks of paged_attention's operands, shared by every backend (each
// backend adds its own dtype and device rules): q [T, Hq * D] and out of q's shape, a KV layer of
// positive sizes with values (and scales for the quantized dtypes), and metadata whose pointers
// exist when it has sequences. Each failure names the op, the operand and what was expected.
#include <cstdint>

#include "core/batch.h"
#include "core/error.h"
#include "core/kv_quant.h"
#include "core/paged_kv.h"
#include "core/tensor.h"

namespace nanovllm {

inline void check_attention_operands(const char* op, const Tensor& q, const PagedKvLayer& kv,
                                     const AttentionMeta& meta, const Tensor& out) {
  NANOVLLM_CHECK(out.ndim == 2 && out.dim(0) == q.dim(0) && out.dim(1) == q.dim(1), op,
                 ": tensor 'out' has shape ", out.shape_string(), ", expected q's ",
                 q.shape_string());
  NANOVLLM_CHECK(kv.head_dim > 0 && kv.num_kv_heads > 0 && kv.block_size > 0, op,
                 ": kv cache has head_dim ", kv.head_dim, ", num_kv_heads ", kv.num_kv_heads,
                 ", block_size ", kv.block_size, "; expected positive sizes");
  const int64_t D = kv.head_dim, Hkv = kv.num_kv_heads;
  NANOVLLM_CHECK(q.dim(1) % (D * Hkv) == 0, op, ": q has shape ", q.shape_string(),
                 ", expected [T, Hq * ", D, "] with Hq a multiple of ", Hkv);
  NANOVLLM_CHECK(kv.k && kv.v, op, ": kv cache values are null");
  NANOVLLM_CHECK(!kv_is_quantized(kv.dtype) || (kv.k_scale && kv.v_scale), op,
                 ": kv cache of dtype ", kv_dtype_name(kv.dtype), " needs k_scale and v_scale");
  const int32_t B = meta.num_seqs;
  NANOVLLM_CHECK(B >= 0 && (B == 0 || (meta.cu_seqlens_q && meta.context_lens &&
                                       meta.block_tables)),
                 op, ": meta has num_seqs ", B, " but null cu_seqlens_q/context_lens/block_tables");
  NANOVLLM_CHECK(B > 0 || q.dim(0) == 0, op, ": q has ", q.dim(0),
                 " rows but meta has no sequences");
}

}  // namespace nanovllm
