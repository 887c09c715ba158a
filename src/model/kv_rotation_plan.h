#pragma once
// Where the model applies core/kv_rotation.h's R for a quantized KV cache: K (q and K rotated in
// qkv_rope_store) and V (R folded into the v_proj and o_proj weights at load time).
#include <cstdint>
#include <vector>

#include "core/kv_dtype.h"

namespace nanovllm {

struct KvRotationPlan {
  bool rotate_qk = false;  // QkvSpec::rotate_qk
  bool rotate_v = false;   // fold R into v_proj (rows) and o_proj (input columns)
};

KvRotationPlan kv_rotation_plan(KvDType kv_dtype, int32_t head_dim);

// v_proj weight [Hkv D, H] (row-major) and bias [Hkv D] (or empty): each KV head's D-row block
// becomes R times it, so the projection yields R v and the cache stores rotated V.
void rotate_v_proj(std::vector<float>& weight, std::vector<float>& bias, int64_t num_kv_heads,
                   int64_t head_dim, int64_t hidden);
// o_proj weight [H, Hq D]: every q head's D-column block becomes itself times R^T, so it undoes
// the rotation of the attention output (sum of p_t R v_t = R o).
void rotate_o_proj(std::vector<float>& weight, int64_t hidden, int64_t num_heads,
                   int64_t head_dim);

}  // namespace nanovllm
