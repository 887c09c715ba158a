#include "model/decoder_model.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/half.h"
#include "model/kv_rotation_plan.h"

namespace nanovllm {
namespace {

// Whether storing `values` as `dtype` loses nothing.
bool exact_in(DType dtype, const std::vector<float>& values) {
  for (float v : values)
    if (round_to_dtype(dtype, v) != v) return false;
  return true;
}

std::vector<float> concat_rows(std::initializer_list<const std::vector<float>*> parts) {
  std::vector<float> out;
  size_t n = 0;
  for (auto* p : parts) n += p->size();
  out.reserve(n);
  for (auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

// w[rows, cols] = w diag(norm): an RMSNorm weight folded into the input columns of the product
// that reads the normed rows.
void fold_norm_into_columns(std::vector<float>& w, const std::vector<float>& norm) {
  const size_t cols = norm.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] *= norm[i % cols];
}

}  // namespace

DecoderModel::DecoderModel(const ModelConfig& config, Backend& backend, const WeightSource& weights,
                           int32_t max_tokens, int32_t max_logit_rows, KvDType kv_dtype)
    : config_(config), backend_(backend), act_(backend.activation_dtype(config.torch_dtype)),
      weight_dtype_(backend.weight_dtype(config.torch_dtype)), store_(backend) {
  load(weights, kv_dtype);
  weight_bytes_ = store_.total_bytes();
  const int64_t T = max_tokens, H = config.hidden_size, D = config.head_dim;
  const int64_t q_width = int64_t(config.num_attention_heads) * D;
  const int64_t qkv_width = q_width + 2 * int64_t(config.num_key_value_heads) * D;
  const int64_t I = config.intermediate_size;
  residual_ = store_.allocate(act_, {T, H});
  normed_ = store_.allocate(act_, {T, H});
  qkv_ = store_.allocate(act_, {T, qkv_width});
  q_ = store_.allocate(act_, {T, q_width});
  attn_ = store_.allocate(act_, {T, q_width});
  gate_up_ = store_.allocate(act_, {T, 2 * I});
  act_buf_ = store_.allocate(act_, {T, I});
  gathered_ = store_.allocate(act_, {max_logit_rows, H});
  logits_ = store_.allocate(DType::F32, {max_logit_rows, config.vocab_size});
}

void DecoderModel::load(const WeightSource& w, KvDType kv_dtype) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, D = c.head_dim, V = c.vocab_size, I = c.intermediate_size;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  // Every weight arrives as float32 (GGUF blocks are dequantized by the loader), so folding the V
  // rotation into v_proj/o_proj is exact up to float rounding before the upload's conversion.
  const KvRotationPlan rot = kv_rotation_plan(kv_dtype, c.head_dim);
  auto get = [&](const std::string& name, std::initializer_list<int64_t> shape) {
    std::vector<int64_t> s(shape);
    return w.load_f32(name, s);
  };
  // A matrix is stored in the backend's weight dtype where that loses nothing (a BF16 checkpoint
  // on the CPU), else in the activation dtype (dequantized GGUF blocks, dummy weights). A matrix
  // that the V rotation folded into (rotated_from_exact: exact in the weight dtype before)
  // is rounded to the weight dtype too: the rotation is an exact identity only in real
  // arithmetic anyway, the rounding is the one a BF16 backend (CUDA) makes for every matrix, and
  // keeping it in F32 doubled the bytes of qkv and o_proj a step reads (CPU W4 with INT8 KV
  // 84.2 -> 70.2 ms per token when they stay BF16, docs/benchmarks.md).
  auto matrix = [&](const std::vector<float>& values, std::initializer_list<int64_t> shape,
                    bool rotated_from_exact = false) {
    const bool narrow = weight_dtype_ != act_ && (rotated_from_exact || exact_in(weight_dtype_, values));
    return store_.upload(values, narrow ? weight_dtype_ : act_, shape);
  };
  embed_ = matrix(get("model.embed_tokens.weight", {V, H}), {V, H});
  final_norm_ = store_.upload(get("model.norm.weight", {H}), act_, {H});
  if (c.tie_word_embeddings && !w.contains("lm_head.weight")) {
    lm_head_ = embed_;
  } else {
    lm_head_ = matrix(get("lm_head.weight", {V, H}), {V, H});
  }
  std::vector<float> inv = rope_inv_freq(c);
  inv_freq_ = store_.upload(inv, DType::F32, {int64_t(inv.size())});
  // Folded norms stay undefined in the Layer: attention_input / mlp_residual then take a unit one.
  const bool fold_norms = backend_.folds_norm_weights(act_);

  for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer L;
    const std::vector<float> input_norm = get(p + "input_layernorm.weight", {H});
    const std::vector<float> post_norm = get(p + "post_attention_layernorm.weight", {H});
    if (!fold_norms) {
      L.input_norm = store_.upload(input_norm, act_, {H});
      L.post_norm = store_.upload(post_norm, act_, {H});
    }
    {
      auto q = get(p + "self_attn.q_proj.weight", {Hq * D, H});
      auto k = get(p + "self_attn.k_proj.weight", {Hkv * D, H});
      auto v = get(p + "self_attn.v_proj.weight", {Hkv * D, H});
      std::vector<float> qb, kb, vb;
      if (c.attention_bias) {
        qb = get(p + "self_attn.q_proj.bias", {Hq * D});
        kb = get(p + "self_attn.k_proj.bias", {Hkv * D});
        vb = get(p + "self_attn.v_proj.bias", {Hkv * D});
      }
      const bool v_rotated_from_exact =
          rot.rotate_v && !fold_norms && exact_in(weight_dtype_, q) && exact_in(weight_dtype_, k) &&
          exact_in(weight_dtype_, v);
      if (rot.rotate_v) rotate_v_proj(v, vb, Hkv, D, H);
      if (fold_norms)
        for (auto* m : {&q, &k, &v}) fold_norm_into_columns(*m, input_norm);
      L.qkv_weight = matrix(concat_rows({&q, &k, &v}), {(Hq + 2 * Hkv) * D, H}, v_rotated_from_exact);
      if (c.attention_bias)
        L.qkv_bias = store_.upload(concat_rows({&qb, &kb, &vb}), act_, {(Hq + 2 * Hkv) * D});
    }
    {
      auto o = get(p + "self_attn.o_proj.weight", {H, Hq * D});
      const bool o_rotated_from_exact = rot.rotate_v && exact_in(weight_dtype_, o);
      if (rot.rotate_v) rotate_o_proj(o, H, Hq, D);
      L.o_weight = matrix(o, {H, Hq * D}, o_rotated_from_exact);
    }
    if (c.attention_out_bias)
      L.o_bias = store_.upload(get(p + "self_attn.o_proj.bias", {H}), act_, {H});
    {
      auto g = get(p + "mlp.gate_proj.weight", {I, H});
      auto u = get(p + "mlp.up_proj.weight", {I, H});
      if (fold_norms)
        for (auto* m : {&g, &u}) fold_norm_into_columns(*m, post_norm);
      L.gate_up_weight = matrix(concat_rows({&g, &u}), {2 * I, H});
    }
    L.down_weight = matrix(get(p + "mlp.down_proj.weight", {H, I}), {H, I});
    L.qkv.num_heads = int32_t(Hq);
    L.qkv.num_kv_heads = int32_t(Hkv);
    L.qkv.head_dim = int32_t(D);
    L.qkv.norm_eps = c.rms_norm_eps;
    L.qkv.inv_freq = inv_freq_;
    L.qkv.rotate_qk = rot.rotate_qk;
    if (c.qk_norm) {
      L.qkv.q_norm = store_.upload(get(p + "self_attn.q_norm.weight", {D}), act_, {D});
      L.qkv.k_norm = store_.upload(get(p + "self_attn.k_norm.weight", {D}), act_, {D});
    }
    layers_.push_back(L);
  }
}

Tensor DecoderModel::forward(const StepTensors& step, std::span<const PagedKvLayer> kv) {
  const int64_t T = step.token_ids.dim(0);
  NANOVLLM_CHECK(T > 0 && T <= residual_.dim(0), "model: step of ", T, " tokens exceeds workspace of ",
                 residual_.dim(0));
  NANOVLLM_CHECK(kv.size() == layers_.size(), "model: ", kv.size(), " KV layers for ",
                 layers_.size(), " model layers");
  Tensor residual = residual_.rows(0, T), normed = normed_.rows(0, T);
  Tensor qkv = qkv_.rows(0, T), q = q_.rows(0, T), attn = attn_.rows(0, T);
  Tensor gate_up = gate_up_.rows(0, T), act = act_buf_.rows(0, T);
  const float scale = 1.0f / std::sqrt(float(config_.head_dim));
  const float eps = config_.rms_norm_eps;

  // The residual stream lives in `residual`: o_proj and down add into it, and the blocks after
  // each norm read it, so a backend can fuse the norms and the adds into them.
  backend_.embedding(step.token_ids, embed_, residual);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& L = layers_[i];
    backend_.attention_input(residual, L.input_norm, eps, L.qkv_weight,
                             L.qkv_bias.defined() ? &L.qkv_bias : nullptr, L.qkv, step.positions,
                             step.slot_mapping, kv[i], normed, qkv, q);
    backend_.paged_attention(q, kv[i], step.attention, scale, attn);
    backend_.linear_residual(attn, L.o_weight, L.o_bias.defined() ? &L.o_bias : nullptr, residual);
    backend_.mlp_residual(L.post_norm, eps, L.gate_up_weight, L.down_weight, normed, gate_up, act,
                          residual);
  }
  backend_.rms_norm(residual, final_norm_, eps, normed);
  return normed;
}

Tensor DecoderModel::logits(const Tensor& hidden, const Tensor& indices) {
  const int64_t S = indices.dim(0);
  NANOVLLM_CHECK(S > 0 && S <= gathered_.dim(0), "model: ", S, " logit rows exceed workspace of ",
                 gathered_.dim(0));
  Tensor gathered = gathered_.rows(0, S);
  Tensor out = logits_.rows(0, S);
  backend_.gather_rows(hidden, indices, gathered);
  backend_.linear(gathered, lm_head_, nullptr, out);
  return out;
}

}  // namespace nanovllm
