#pragma once
// The interface every compute backend implements (cpu now, cuda next). One virtual call per op;
// each op is a stateless function of views, so a backend keeps no per-step state and the model
// code is identical on every device. Shapes: T tokens in the step, H hidden size, D head_dim,
// Hq/Hkv query/KV heads, V vocab, S sampled rows. Activations are in activation_dtype().
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/batch.h"
#include "core/paged_kv.h"
#include "core/tensor.h"

namespace nanovllm {

struct MemoryInfo {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};

// What qkv_rope_store needs to know about the attention block.
struct QkvSpec {
  int32_t num_heads = 0;     // Hq
  int32_t num_kv_heads = 0;  // Hkv
  int32_t head_dim = 0;      // D
  Tensor q_norm;             // [D] per-head RMSNorm weight (Qwen3), or undefined
  Tensor k_norm;             // [D] or undefined
  float norm_eps = 1e-6f;
  Tensor inv_freq;           // [D/2] float32 RoPE inverse frequencies (NeoX / rotate-half pairing)
  // After norm and RoPE, q (as written out) and K (as stored) are rotated by core/kv_rotation.h's
  // R; D must be a power of two. Set by the model for quantized KV caches only.
  bool rotate_qk = false;
};

// A recorded sequence of launches that can be replayed with the same buffers (CUDA graphs).
class CapturedStep {
 public:
  virtual ~CapturedStep() = default;
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual std::string name() const = 0;
  // The hardware the ops run on, for reports: the GPU's name, or "cpu".
  virtual std::string device_name() const { return name(); }
  // The dtype activations and weights are computed in for a model stored in model_dtype.
  virtual DType activation_dtype(DType model_dtype) const = 0;
  // The dtype the model's matrices (embedding, projections, LM head) are stored in: the
  // activation dtype, unless a backend computes with wider activations than the model stores
  // (the CPU keeps a BF16 model's matrices in BF16 and widens them as it reads them).
  virtual DType weight_dtype(DType model_dtype) const { return activation_dtype(model_dtype); }

  // ---- memory ----
  virtual Buffer allocate(size_t bytes) = 0;
  virtual void copy_from_host(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual void synchronize() = 0;
  virtual MemoryInfo memory_info() const = 0;
  // Peak bytes allocated by the device since the last reset (for KV sizing after warm-up).
  virtual size_t peak_allocated_bytes() const { return 0; }

  // ---- ops ----
  // out[T, H] = table[ids[t], :]; ids int32 [T]; table [V, H]
  virtual void embedding(const Tensor& ids, const Tensor& table, Tensor out) = 0;
  // out[T, H] = x / rms(x) * weight[H]; an undefined weight is a unit one (folded into a product)
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out) = 0;
  // out[T, N] = x[T, K] . w[N, K]^T (+ bias[N]); out may be F32 when x and w are 16-bit.
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) = 0;
  // residual[T, N] += x[T, K] . w[N, K]^T (+ bias[N]): o_proj and down adding into the residual
  // stream. residual is in x's dtype.
  virtual void linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias,
                               Tensor residual) = 0;
  // out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]; gate_up [T, 2I]
  virtual void silu_mul(const Tensor& gate_up, Tensor out) = 0;

  // ---- fused ops: a backend may run each as one kernel; these defaults compose the ops above
  // (what the CPU reference runs). `normed` / `act` are scratch for the intermediate rows. ----
  // out[T, N] = (rms_norm(x[T, K]) * norm_weight[K]) . w[N, K]^T (+ bias[N]); normed [T, K];
  // norm_weight may be undefined (unit), as in rms_norm
  virtual void norm_linear(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                           const Tensor* bias, Tensor normed, Tensor out) {
    rms_norm(x, norm_weight, eps, normed);
    linear(normed, w, bias, out);
  }
  // residual[T, N] += (silu(gate_up[:, :I]) * gate_up[:, I:]) . w[N, I]^T; act [T, I]
  virtual void silu_mul_linear_residual(const Tensor& gate_up, const Tensor& w, Tensor act,
                                        Tensor residual) {
    silu_mul(gate_up, act);
    linear_residual(act, w, nullptr, residual);
  }
  // The attention block's input: q_out and the K/V stored by
  // qkv_rope_store(norm_linear(x, norm_weight, eps, w, bias)). x [T, H] is the residual stream;
  // normed [T, H] and qkv [T, (Hq + 2 Hkv) D] are scratch.
  virtual void attention_input(const Tensor& x, const Tensor& norm_weight, float eps,
                               const Tensor& w, const Tensor* bias, const QkvSpec& spec,
                               const Tensor& positions, const Tensor& slot_mapping,
                               const PagedKvLayer& kv, Tensor normed, Tensor qkv, Tensor q_out) {
    norm_linear(x, norm_weight, eps, w, bias, normed, qkv);
    qkv_rope_store(qkv, spec, positions, slot_mapping, kv, q_out);
  }
  // The MLP block: residual[T, H] += silu_mul(norm_linear(residual, norm_weight, eps,
  // gate_up_w)) . down_w^T, gate_up_w [2I, H], down_w [H, I]; normed [T, H], gate_up [T, 2I] and
  // act [T, I] are scratch.
  virtual void mlp_residual(const Tensor& norm_weight, float eps, const Tensor& gate_up_w,
                            const Tensor& down_w, Tensor normed, Tensor gate_up, Tensor act,
                            Tensor residual) {
    norm_linear(residual, norm_weight, eps, gate_up_w, nullptr, normed, gate_up);
    silu_mul_linear_residual(gate_up, down_w, act, residual);
  }
  // Whether the model should fold each RMSNorm weight into the columns of the product after it
  // (W' = W diag(norm_weight)) and pass an undefined norm weight to attention_input and
  // mlp_residual: true where the backend then needs fewer kernels. Never for F16 activations,
  // where a product of unnormalized rows could overflow.
  virtual bool folds_norm_weights(DType act) const {
    (void)act;
    return false;
  }
  // qkv [T, (Hq + 2 Hkv) D] -> q_out [T, Hq D] with optional per-head q/k RMSNorm and RoPE at
  // positions (int32 [T]); K (normed, roped) and V are stored, quantized when kv.dtype is, at
  // slot_mapping (int64 [T], -1 skipped).
  virtual void qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                              const Tensor& slot_mapping, const PagedKvLayer& kv,
                              Tensor q_out) = 0;
  // out[T, Hq D] = causal softmax(q . k * scale) . v over the paged cache (see AttentionMeta).
  virtual void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                               float scale, Tensor out) = 0;
  // out[S, H] = x[indices[s], :]; indices int32 [S]
  virtual void gather_rows(const Tensor& x, const Tensor& indices, Tensor out) = 0;
  // Picks one token per logits row (float32 [S, V]) into host out_token_ids[S].
  virtual void sample(const Tensor& logits, std::span<const SamplingRow> rows,
                      int32_t* out_token_ids) = 0;

  // ---- graphs ----
  // Records the launches `step` makes for replay; nullptr where the backend cannot (CPU).
  virtual std::unique_ptr<CapturedStep> capture(const std::function<void()>& step) {
    (void)step;
    return nullptr;
  }
};

// "cpu", "cuda" or "auto" (cuda when a GPU is present and the build has it, else cpu).
std::unique_ptr<Backend> make_backend(const std::string& device);
bool cuda_available();

}  // namespace nanovllm
