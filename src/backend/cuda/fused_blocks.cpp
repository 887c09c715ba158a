// The CUDA backend's attention-input and MLP blocks. When the model folded the RMSNorm weight
// into the product after it (Backend::folds_norm_weights; undefined norm_weight here), a block of
// more rows than the small-M kernel takes needs no norm kernel: the product reads the raw
// residual x, and the kernel after it (qkv_rope_store, silu_mul) scales each row of the product
// by r = 1 / sqrt(mean(x_row^2) + eps), recomputed from the residual row (one row per CTA, from
// L2). Since (r x) W'^T = r (x W'^T), this is the composed block up to rounding. The residual is
// not written between the product and that kernel, so r is the norm's own factor.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"

namespace nanovllm {
namespace {

// Rows up to which a block with a folded norm skips the norm kernel. Above them (prefill) the
// consumers' per-CTA reduction of the residual row costs more than the norm kernel it replaces
// (W1 prefill +11-16% on an H100 without this bound), so rms_norm runs with a unit weight.
constexpr int64_t kPendingNormMaxRows = 512;

// Whether a block takes the folded path: a unit (folded) norm weight, no bias (Qwen2's qkv bias
// would have to be added after the scaling), the product's output in x's dtype (the pending
// kernels read x as their own activation type), contiguous rows of x, and a decode-sized batch.
bool folded_path(const Tensor& x, const Tensor& norm_weight, const Tensor* bias,
                 const Tensor& product_out) {
  return !norm_weight.defined() && !bias && product_out.dtype == x.dtype && x.ndim == 2 &&
         product_out.ndim == 2 && product_out.dim(0) == x.dim(0) &&
         x.dim(0) <= kPendingNormMaxRows;
}

cuda::RowRms pending_norm(const Tensor& x, float eps) { return {x.data, x.dim(1), eps}; }

}  // namespace

void CudaBackend::attention_input(const Tensor& x, const Tensor& norm_weight, float eps,
                                  const Tensor& w, const Tensor* bias, const QkvSpec& spec,
                                  const Tensor& positions, const Tensor& slot_mapping,
                                  const PagedKvLayer& kv, Tensor normed, Tensor qkv,
                                  Tensor q_out) {
  if (!folded_path(x, norm_weight, bias, qkv) || runs_fused_small_m(x, w, qkv))
    return Backend::attention_input(x, norm_weight, eps, w, bias, spec, positions, slot_mapping,
                                    kv, normed, qkv, q_out);
  linear(x, w, nullptr, qkv);
  qkv_rope_store_pending(qkv, spec, positions, slot_mapping, kv, q_out, pending_norm(x, eps));
}

void CudaBackend::mlp_residual(const Tensor& norm_weight, float eps, const Tensor& gate_up_w,
                               const Tensor& down_w, Tensor normed, Tensor gate_up, Tensor act,
                               Tensor residual) {
  if (!folded_path(residual, norm_weight, nullptr, gate_up) ||
      runs_fused_small_m(residual, gate_up_w, gate_up))
    return Backend::mlp_residual(norm_weight, eps, gate_up_w, down_w, normed, gate_up, act,
                                 residual);
  linear(residual, gate_up_w, nullptr, gate_up);
  silu_mul_pending(gate_up, act, pending_norm(residual, eps));
  linear_residual(act, down_w, nullptr, residual);
}

}  // namespace nanovllm
