#pragma once
// Persistent device copies of a step's inputs. Their addresses never change, so a captured graph
// that reads them stays valid; each step overwrites their leading rows.
#include "backend/backend.h"
#include "core/batch.h"
#include "model/decoder_model.h"
#include "model/device_weights.h"

namespace nanovllm {

class StepBuffers {
 public:
  StepBuffers(Backend& backend, int32_t max_tokens, int32_t max_seqs, int32_t block_table_width,
              int32_t max_logit_rows);

  // Copies `input` into the buffers; returns the device views of it (AttentionMeta included).
  StepTensors upload(const BatchInput& input);
  // Device view of the first n logits indices uploaded by the latest upload/upload_indices.
  Tensor logits_indices(int32_t n) const { return logits_indices_.rows(0, n); }
  // Overwrites logits indices with `indices` (host), for extra logits passes.
  Tensor upload_indices(std::span<const int32_t> indices);

 private:
  Backend& backend_;
  DeviceWeights store_;
  int32_t block_table_width_;
  Tensor token_ids_;       // int32 [max_tokens]
  Tensor positions_;       // int32 [max_tokens]
  Tensor slot_mapping_;    // int64 [max_tokens]
  Tensor cu_seqlens_q_;    // int32 [max_seqs + 1]
  Tensor context_lens_;    // int32 [max_seqs]
  Tensor block_tables_;    // int32 [max_seqs, block_table_width]
  Tensor logits_indices_;  // int32 [max(max_tokens, max_logit_rows)]
};

}  // namespace nanovllm
