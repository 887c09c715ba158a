#include "engine/step_buffers.h"

#include <algorithm>

#include "core/error.h"

namespace nanovllm {

StepBuffers::StepBuffers(Backend& backend, int32_t max_tokens, int32_t max_seqs,
                         int32_t block_table_width, int32_t max_logit_rows)
    : backend_(backend), store_(backend), block_table_width_(block_table_width) {
  token_ids_ = store_.allocate(DType::I32, {max_tokens});
  positions_ = store_.allocate(DType::I32, {max_tokens});
  slot_mapping_ = store_.allocate(DType::I64, {max_tokens});
  cu_seqlens_q_ = store_.allocate(DType::I32, {max_seqs + 1});
  context_lens_ = store_.allocate(DType::I32, {max_seqs});
  block_tables_ = store_.allocate(DType::I32, {int64_t(max_seqs) * block_table_width});
  logits_indices_ = store_.allocate(DType::I32, {std::max(max_tokens, max_logit_rows)});
}

StepTensors StepBuffers::upload(const BatchInput& in) {
  const int64_t T = in.num_tokens(), B = in.num_seqs();
  NANOVLLM_CHECK(T <= token_ids_.dim(0) && B <= context_lens_.dim(0),
                 "step buffers: ", T, " tokens / ", B, " sequences exceed the configured maxima");
  NANOVLLM_CHECK(in.max_blocks_per_seq == block_table_width_, "step buffers: block table width ",
                 in.max_blocks_per_seq, " != ", block_table_width_);
  auto put = [&](const Tensor& dst, const auto& host) {
    if (!host.empty())
      backend_.copy_from_host(dst.data, host.data(), host.size() * sizeof(host[0]));
  };
  put(token_ids_, in.token_ids);
  put(positions_, in.positions);
  put(slot_mapping_, in.slot_mapping);
  put(cu_seqlens_q_, in.cu_seqlens_q);
  put(context_lens_, in.context_lens);
  put(block_tables_, in.block_tables);
  put(logits_indices_, in.logits_indices);

  StepTensors step;
  step.token_ids = token_ids_.rows(0, T);
  step.positions = positions_.rows(0, T);
  step.slot_mapping = slot_mapping_.rows(0, T);
  step.attention.cu_seqlens_q = cu_seqlens_q_.ptr<int32_t>();
  step.attention.context_lens = context_lens_.ptr<int32_t>();
  step.attention.block_tables = block_tables_.ptr<int32_t>();
  step.attention.num_seqs = int32_t(B);
  step.attention.max_blocks_per_seq = block_table_width_;
  step.attention.max_query_len = in.max_query_len;
  step.attention.max_context_len = in.max_context_len;
  step.attention.even_contexts = in.even_contexts;
  return step;
}

Tensor StepBuffers::upload_indices(std::span<const int32_t> indices) {
  NANOVLLM_CHECK(int64_t(indices.size()) <= logits_indices_.dim(0), "step buffers: ",
                 indices.size(), " logits rows exceed ", logits_indices_.dim(0));
  backend_.copy_from_host(logits_indices_.data, indices.data(), indices.size() * sizeof(int32_t));
  return logits_indices_.rows(0, int64_t(indices.size()));
}

}  // namespace nanovllm
