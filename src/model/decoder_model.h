#pragma once
// The decoder-only transformer shared by Llama, Qwen2 and Qwen3 (nano-vllm's models/qwen3.py):
// embedding -> N x [RMSNorm + fused QKV, (q/k norm) + RoPE + KV store, paged attention, o_proj
// into the residual, RMSNorm + gate_up, SiLU x up + down into the residual] -> final norm -> LM
// head on the sampled rows only.
#include <span>
#include <vector>

#include "backend/backend.h"
#include "core/kv_dtype.h"
#include "model/device_weights.h"
#include "model/model_config.h"
#include "model/weight_source.h"

namespace nanovllm {

// Device views of one step's inputs (see core/batch.h for their meaning).
struct StepTensors {
  Tensor token_ids;     // int32 [T]
  Tensor positions;     // int32 [T]
  Tensor slot_mapping;  // int64 [T]
  AttentionMeta attention;
};

class DecoderModel {
 public:
  // max_tokens: most tokens one step may carry; max_logit_rows: most rows logits() may compute.
  // kv_dtype: the cache's format; a quantized one may rotate q/K and V (model/kv_rotation_plan.h).
  DecoderModel(const ModelConfig& config, Backend& backend, const WeightSource& weights,
               int32_t max_tokens, int32_t max_logit_rows, KvDType kv_dtype);

  // Runs every layer over the step's T tokens, storing their K/V into kv (one view per layer).
  // Returns the final normed hidden states [T, H] (a view into the model's workspace).
  Tensor forward(const StepTensors& step, std::span<const PagedKvLayer> kv);
  // float32 logits [S, V] of hidden rows `indices` (int32 [S] on the device), S <= max_logit_rows.
  Tensor logits(const Tensor& hidden, const Tensor& indices);
  // The first `rows` rows of the logits workspace (what the latest logits() call wrote).
  Tensor logits_view(int64_t rows) const { return logits_.rows(0, rows); }

  const ModelConfig& config() const { return config_; }
  DType activation_dtype() const { return act_; }
  int64_t weight_bytes() const { return weight_bytes_; }

 private:
  struct Layer {
    Tensor input_norm;     // [H], or undefined when folded into qkv_weight's columns
    Tensor qkv_weight;     // [(Hq + 2 Hkv) D, H]
    Tensor qkv_bias;       // [(Hq + 2 Hkv) D] or undefined
    Tensor o_weight;       // [H, Hq D]
    Tensor o_bias;         // [H] or undefined (Llama/Qwen3 with attention_bias)
    Tensor post_norm;      // [H], or undefined when folded into gate_up_weight's columns
    Tensor gate_up_weight;  // [2 I, H]
    Tensor down_weight;    // [H, I]
    QkvSpec qkv;           // head counts, q/k norm weights, RoPE frequencies
  };
  void load(const WeightSource& weights, KvDType kv_dtype);

  ModelConfig config_;
  Backend& backend_;
  DType act_;
  DType weight_dtype_;  // of the matrices (Backend::weight_dtype); norms and biases are in act_
  DeviceWeights store_;
  int64_t weight_bytes_ = 0;
  Tensor embed_;       // [V, H]
  Tensor final_norm_;  // [H]
  Tensor lm_head_;     // [V, H] (the embedding when tied)
  Tensor inv_freq_;    // [D/2] float32
  std::vector<Layer> layers_;

  // Workspace, sized for max_tokens rows (views are taken per step; nothing allocates later).
  Tensor residual_;  // [T, H] the residual stream
  Tensor normed_;    // [T, H] normalized rows (scratch of norm_linear; forward's result)
  Tensor qkv_;       // [T, (Hq + 2 Hkv) D]
  Tensor q_;         // [T, Hq D]
  Tensor attn_;      // [T, Hq D]
  Tensor gate_up_;   // [T, 2 I]
  Tensor act_buf_;   // [T, I]
  Tensor gathered_;  // [S, H]
  Tensor logits_;    // [S, V] float32
};

}  // namespace nanovllm
