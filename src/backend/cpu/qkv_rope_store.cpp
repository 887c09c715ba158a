#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/tensor_checks.h"
#include "core/kv_quant.h"
#include "core/kv_rotation.h"

namespace nanovllm::cpu {

namespace {

void check_inputs(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                  const Tensor& slot_mapping, const PagedKvLayer& kv, const Tensor& q_out) {
  const char* op = "qkv_rope_store";
  const int64_t Hq = spec.num_heads, Hkv = spec.num_kv_heads, D = spec.head_dim;
  NANOVLLM_CHECK(Hq > 0 && Hkv > 0 && D > 0 && Hq % Hkv == 0, op, ": spec has num_heads ", Hq,
                 ", num_kv_heads ", Hkv, ", head_dim ", D,
                 "; expected positive sizes with num_heads a multiple of num_kv_heads");
  check_tensor(qkv, op, "qkv", DType::F32, 2);
  const int64_t T = qkv.dim(0);
  check_dim(qkv, 1, (Hq + 2 * Hkv) * D, op, "qkv");
  check_tensor(q_out, op, "q_out", DType::F32, 2);
  check_dim(q_out, 0, T, op, "q_out");
  check_dim(q_out, 1, Hq * D, op, "q_out");
  check_tensor(positions, op, "positions", DType::I32, 1);
  check_dim(positions, 0, T, op, "positions");
  check_tensor(slot_mapping, op, "slot_mapping", DType::I64, 1);
  check_dim(slot_mapping, 0, T, op, "slot_mapping");
  for (const Tensor* norm : {&spec.q_norm, &spec.k_norm}) {
    if (!norm->defined()) continue;
    check_tensor(*norm, op, norm == &spec.q_norm ? "q_norm" : "k_norm", DType::F32, 1);
    check_dim(*norm, 0, D, op, norm == &spec.q_norm ? "q_norm" : "k_norm");
  }
  if (spec.inv_freq.defined()) {
    NANOVLLM_CHECK(D % 2 == 0, op, ": RoPE needs an even head_dim, got ", D);
    check_tensor(spec.inv_freq, op, "inv_freq", DType::F32, 1);
    check_dim(spec.inv_freq, 0, D / 2, op, "inv_freq");
  }
  NANOVLLM_CHECK(!spec.rotate_qk || kv_rotation_supported(D), op,
                 ": rotate_qk needs a power-of-two head_dim, got ", D);
  NANOVLLM_CHECK(kv.num_kv_heads == Hkv && kv.head_dim == D, op, ": kv cache has ",
                 kv.num_kv_heads, " heads of dim ", kv.head_dim, ", spec has ", Hkv, " of dim ",
                 D);
  NANOVLLM_CHECK(kv.k && kv.v, op, ": kv cache values are null");
  NANOVLLM_CHECK(!kv_is_quantized(kv.dtype) || (kv.k_scale && kv.v_scale), op,
                 ": kv cache of dtype ", kv_dtype_name(kv.dtype), " needs k_scale and v_scale");
  const int64_t num_slots = int64_t(kv.num_blocks) * kv.block_size;
  const int64_t* slots = slot_mapping.ptr<int64_t>();
  const int32_t* pos = positions.ptr<int32_t>();
  for (int64_t t = 0; t < T; ++t) {
    NANOVLLM_CHECK(slots[t] >= -1 && slots[t] < num_slots, op, ": slot_mapping[", t, "] = ",
                   slots[t], " is outside [-1, ", num_slots, ")");
    NANOVLLM_CHECK(pos[t] >= 0, op, ": positions[", t, "] = ", pos[t], " is negative");
  }
}

// x[D] *= 1 / rms(x) * w[D]  (per-head RMSNorm of Qwen3)
void head_rms_norm(float* x, const float* w, float eps, int64_t D) {
  double ss = 0.0;
  for (int64_t i = 0; i < D; ++i) ss += double(x[i]) * double(x[i]);
  const float inv = float(1.0 / std::sqrt(ss / double(D) + double(eps)));
  for (int64_t i = 0; i < D; ++i) x[i] = x[i] * inv * w[i];
}

// Rotate-half (NeoX) RoPE on x[D]: pairs (i, i + D/2) rotated by cos_sin[i] = (cos, sin).
void rope(float* x, const float* cos, const float* sin, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cos[i] - b * sin[i];
    x[i + half] = b * cos[i] + a * sin[i];
  }
}

}  // namespace

void qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                    const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out) {
  check_inputs(qkv, spec, positions, slot_mapping, kv, q_out);
  const int64_t T = qkv.dim(0), Hq = spec.num_heads, Hkv = spec.num_kv_heads, D = spec.head_dim;
  const int64_t row = (Hq + 2 * Hkv) * D;
  const float* q_norm = spec.q_norm.defined() ? spec.q_norm.ptr<float>() : nullptr;
  const float* k_norm = spec.k_norm.defined() ? spec.k_norm.ptr<float>() : nullptr;
  const float* inv_freq = spec.inv_freq.defined() ? spec.inv_freq.ptr<float>() : nullptr;
  const int32_t* pos = positions.ptr<int32_t>();
  const int64_t* slots = slot_mapping.ptr<int64_t>();
  const bool quantized = kv_is_quantized(kv.dtype);

#pragma omp parallel
  {
    // per thread: cos/sin [D/2] of the token's position, head [D] the K row being stored
    std::vector<float> cos(size_t(D / 2)), sin(size_t(D / 2)), head(static_cast<size_t>(D));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      if (inv_freq) {
        for (int64_t i = 0; i < D / 2; ++i) {
          const double angle = double(pos[t]) * double(inv_freq[i]);
          cos[i] = float(std::cos(angle));
          sin[i] = float(std::sin(angle));
        }
      }
      const float* src = qkv.ptr<float>() + t * row;
      float* q_dst = q_out.ptr<float>() + t * Hq * D;
      for (int64_t h = 0; h < Hq; ++h) {
        float* x = q_dst + h * D;
        for (int64_t i = 0; i < D; ++i) x[i] = src[h * D + i];
        if (q_norm) head_rms_norm(x, q_norm, spec.norm_eps, D);
        if (inv_freq) rope(x, cos.data(), sin.data(), D);
        if (spec.rotate_qk) kv_rotate(x, int32_t(D));
      }
      const int64_t slot = slots[t];
      if (slot < 0) continue;
      for (int32_t h = 0; h < Hkv; ++h) {
        const float* k_src = src + (Hq + h) * D;
        const float* v_src = src + (Hq + Hkv + h) * D;
        for (int64_t i = 0; i < D; ++i) head[i] = k_src[i];
        if (k_norm) head_rms_norm(head.data(), k_norm, spec.norm_eps, D);
        if (inv_freq) rope(head.data(), cos.data(), sin.data(), D);
        if (spec.rotate_qk) kv_rotate(head.data(), int32_t(D));
        const int64_t off = kv.value_offset(slot, h);
        const float k_scale =
            kv_store_head(head.data(), int32_t(D), kv.dtype, static_cast<char*>(kv.k) + off);
        const float v_scale =
            kv_store_head(v_src, int32_t(D), kv.dtype, static_cast<char*>(kv.v) + off);
        if (quantized) {
          kv.k_scale[kv.scale_offset(slot, h)] = k_scale;
          kv.v_scale[kv.scale_offset(slot, h)] = v_scale;
        }
      }
    }
  }
}

}  // namespace nanovllm::cpu
