#pragma once
// The CPU ops as free functions, one per file; shapes as in backend/backend.h. Every op checks
// its inputs (F32 activations, int32 ids/positions, int64 slots, matching shapes) and throws
// nanovllm::Error naming the op and the tensor on a mismatch.
#include <cstdint>
#include <span>

#include "backend/backend.h"

namespace nanovllm::cpu {

void embedding(const Tensor& ids, const Tensor& table, Tensor out);
void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out);
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out);
void linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor residual);
void silu_mul(const Tensor& gate_up, Tensor out);
void qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                    const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out);
void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                     float scale, Tensor out);
void gather_rows(const Tensor& x, const Tensor& indices, Tensor out);
void sample(const Tensor& logits, std::span<const SamplingRow> rows, int32_t* out_token_ids);

}  // namespace nanovllm::cpu
