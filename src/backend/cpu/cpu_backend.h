#pragma once
// The CPU backend: F32 compute on the host, OpenMP across cores, OpenBLAS for linear. It is the
// reference every other backend's ops are checked against. Each op lives in its own file
// (declared in cpu_ops.h); the class only dispatches.
#include <memory>

#include "backend/backend.h"

namespace nanovllm {

// Not final: tests derive a backend that asks the model to fold its norm weights.
class CpuBackend : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  std::string name() const override { return "cpu"; }
  // Always F32: 16-bit weights are widened at load time, except a BF16 checkpoint's matrices,
  // kept in BF16 and widened as they are read (weight_dtype).
  DType activation_dtype(DType model_dtype) const override;
  DType weight_dtype(DType model_dtype) const override;

  Buffer allocate(size_t bytes) override;
  void copy_from_host(void* device_dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void synchronize() override {}
  MemoryInfo memory_info() const override;

  void embedding(const Tensor& ids, const Tensor& table, Tensor out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) override;
  void linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias,
                       Tensor residual) override;
  void silu_mul(const Tensor& gate_up, Tensor out) override;
  void qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                      const Tensor& slot_mapping, const PagedKvLayer& kv, Tensor q_out) override;
  void paged_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                       float scale, Tensor out) override;
  void gather_rows(const Tensor& x, const Tensor& indices, Tensor out) override;
  void sample(const Tensor& logits, std::span<const SamplingRow> rows,
              int32_t* out_token_ids) override;
};

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace nanovllm
