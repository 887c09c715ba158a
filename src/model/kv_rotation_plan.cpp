#include "model/kv_rotation_plan.h"

#include "core/error.h"
#include "core/kv_rotation.h"

namespace nanovllm {

KvRotationPlan kv_rotation_plan(KvDType kv_dtype, int32_t head_dim) {
  // The one place that decides, from `nanovllm eval` (docs/kv_quant_accuracy.md, "Rotation"):
  // INT8 and INT4 gain from rotating K on the trained models (stories260K, SmolLM2-135M: KL 2-3x
  // lower) and V adds ~11% on SmolLM2; the random-weight fixture has no outlier channels and moves
  // either way. FP8 E4M3's error is relative per element: rotating its K helps SmolLM2's 64-wide
  // heads (KL 1.8x lower) but doubles the KL of stories260K's 8-wide heads; rotating its V did not
  // help SmolLM2.
  KvRotationPlan plan;
  if (!kv_rotation_supported(head_dim)) return plan;
  switch (kv_dtype) {
    case KvDType::INT8:
    case KvDType::INT4: plan.rotate_qk = plan.rotate_v = true; break;
    case KvDType::FP8_E4M3: plan.rotate_qk = head_dim >= 64; break;
    default: break;
  }
  return plan;
}

void rotate_v_proj(std::vector<float>& weight, std::vector<float>& bias, int64_t num_kv_heads,
                   int64_t head_dim, int64_t hidden) {
  const int64_t D = head_dim;
  NANOVLLM_CHECK(int64_t(weight.size()) == num_kv_heads * D * hidden &&
                     (bias.empty() || int64_t(bias.size()) == num_kv_heads * D),
                 "rotate_v_proj: weight/bias sizes do not match [", num_kv_heads * D, ", ", hidden,
                 "]");
  std::vector<float> col(static_cast<size_t>(D));  // one column of a head's [D, H] block
  for (int64_t h = 0; h < num_kv_heads; ++h) {
    float* block = weight.data() + h * D * hidden;
    for (int64_t c = 0; c < hidden; ++c) {
      for (int64_t i = 0; i < D; ++i) col[size_t(i)] = block[i * hidden + c];
      kv_rotate(col.data(), int32_t(D));
      for (int64_t i = 0; i < D; ++i) block[i * hidden + c] = col[size_t(i)];
    }
    if (!bias.empty()) kv_rotate(bias.data() + h * D, int32_t(D));
  }
}

void rotate_o_proj(std::vector<float>& weight, int64_t hidden, int64_t num_heads,
                   int64_t head_dim) {
  NANOVLLM_CHECK(int64_t(weight.size()) == hidden * num_heads * head_dim,
                 "rotate_o_proj: weight size does not match [", hidden, ", ",
                 num_heads * head_dim, "]");
  // A row segment u [D] of head h becomes u R^T, i.e. (R u^T)^T: R applied to the segment.
  for (int64_t r = 0; r < hidden * num_heads; ++r)
    kv_rotate(weight.data() + r * head_dim, int32_t(head_dim));
}

}  // namespace nanovllm
