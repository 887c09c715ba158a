#pragma once
// The CUDA backend: the Backend ops as CUDA kernels (one file per op) plus cuBLASLt for the
// matrix products, all enqueued on one stream the backend owns, capturable into CUDA graphs.
// Plain C++ header: no CUDA types, so the engine and tests include it without nvcc.
#include <memory>

#include "backend/backend.h"

namespace nanovllm {
namespace cuda {
struct RowRms;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device = 0);
  ~CudaBackend() override;

  Device device() const override { return Device::CUDA; }
  std::string name() const override { return "cuda"; }
  std::string device_name() const override;  // e.g. "NVIDIA H100 80GB HBM3"
  // BF16 -> BF16, F16 -> F16, anything else F32.
  DType activation_dtype(DType model_dtype) const override;

  Buffer allocate(size_t bytes) override;
  void copy_from_host(void* device_dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void synchronize() override;
  MemoryInfo memory_info() const override;
  size_t peak_allocated_bytes() const override;
  void reset_peak_allocated_bytes();

  void embedding(const Tensor& ids, const Tensor& table, Tensor out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) override;
  void linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias,
                       Tensor residual) override;
  void silu_mul(const Tensor& gate_up, Tensor out) override;
  // The fused ops run as one small-M kernel at <= 8 rows (16-bit activations), else composed.
  void norm_linear(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                   const Tensor* bias, Tensor normed, Tensor out) override;
  void silu_mul_linear_residual(const Tensor& gate_up, const Tensor& w, Tensor act,
                                Tensor residual) override;
  void qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                      const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out) override;
  // With the norm weight folded into w (undefined norm_weight) above the small-M rows: the
  // product of the raw residual, its rows' RMSNorm factor applied by qkv_rope_store / silu_mul
  // (no norm kernel); otherwise as composed (fused_blocks.cpp).
  void attention_input(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                       const Tensor* bias, const QkvSpec& spec, const Tensor& positions,
                       const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor normed,
                       Tensor qkv, Tensor q_out) override;
  void mlp_residual(const Tensor& norm_weight, float eps, const Tensor& gate_up_w,
                    const Tensor& down_w, Tensor normed, Tensor gate_up, Tensor act,
                    Tensor residual) override;
  // BF16 activations unless NANOVLLM_FOLD_NORMS=0 (why: the .cpp).
  bool folds_norm_weights(DType act) const override;
  // Decode batches (max_query_len == 1) take the split-K kernel, anything else the tiled one.
  // Under graph capture, meta.max_context_len must bound the context of every replay (it sizes
  // the split-K grid; longer contexts stay correct, only slower).
  void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                       float scale, Tensor out) override;
  void gather_rows(const Tensor& x, const Tensor& indices, Tensor out) override;
  void sample(const Tensor& logits, std::span<const SamplingRow> rows,
              int32_t* out_token_ids) override;

  // Runs `step` once eagerly (so workspaces reach their size), then records its launches.
  std::unique_ptr<CapturedStep> capture(const std::function<void()>& step) override;

  struct State;

 private:
  // qkv_rope_store and silu_mul with each input row scaled by its pending RMSNorm factor.
  void qkv_rope_store_pending(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                              const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out,
                              const cuda::RowRms& pending);
  void silu_mul_pending(const Tensor& gate_up, Tensor out, const cuda::RowRms& pending);
  // Whether a product x . w^T into out runs as the small-M kernel with its fusions.
  bool runs_fused_small_m(const Tensor& x, const Tensor& w, const Tensor& out) const;

  std::unique_ptr<State> state_;
};

bool cuda_device_present();
std::unique_ptr<Backend> make_cuda_backend(int device = 0);

}  // namespace nanovllm
