#include "backend/cpu/cpu_backend.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "backend/cpu/cpu_ops.h"
#include "core/error.h"

namespace nanovllm {

namespace {
constexpr size_t kAlignment = 64;

// MemAvailable from /proc/meminfo (what can be allocated without swapping), 0 when unreadable.
size_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}
}  // namespace

DType CpuBackend::activation_dtype(DType) const { return DType::F32; }
// A BF16 model's matrices stay BF16 (exact: they are BF16 in the file), so decoding, which reads
// every weight once a step, moves half the bytes; linear and embedding widen them as they read.
DType CpuBackend::weight_dtype(DType model_dtype) const {
  return model_dtype == DType::BF16 ? DType::BF16 : DType::F32;
}

Buffer CpuBackend::allocate(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  NANOVLLM_CHECK(p != nullptr, "cpu backend: cannot allocate ", bytes, " bytes of host memory");
  return Buffer(p, bytes, [](void* q) { std::free(q); });
}

void CpuBackend::copy_from_host(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(device_dst, host_src, bytes);
}

void CpuBackend::copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, device_src, bytes);
}

MemoryInfo CpuBackend::memory_info() const {
  long pages = sysconf(_SC_PHYS_PAGES);
  long avail_pages = sysconf(_SC_AVPHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  MemoryInfo info;
  info.total_bytes = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : 0;
  info.free_bytes = mem_available_bytes();
  if (info.free_bytes == 0 && avail_pages > 0 && page > 0)
    info.free_bytes = size_t(avail_pages) * size_t(page);
  return info;
}

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor out) {
  cpu::embedding(ids, table, out);
}
void CpuBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor out) {
  cpu::rms_norm(x, weight, eps, out);
}
void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor out) {
  cpu::linear(x, w, bias, out);
}
void CpuBackend::linear_residual(const Tensor& x, const Tensor& w, const Tensor* bias,
                                 Tensor residual) {
  cpu::linear_residual(x, w, bias, residual);
}
void CpuBackend::silu_mul(const Tensor& gate_up, Tensor out) { cpu::silu_mul(gate_up, out); }
void CpuBackend::qkv_rope_store(const Tensor& qkv, const QkvSpec& spec, const Tensor& positions,
                                const Tensor& slot_mapping, const PagedKvLayer& kv,
                                Tensor q_out) {
  cpu::qkv_rope_store(qkv, spec, positions, slot_mapping, kv, q_out);
}
void CpuBackend::paged_attention(const Tensor& q, const PagedKvLayer& kv,
                                 const AttentionMeta& meta, float scale, Tensor out) {
  cpu::paged_attention(q, kv, meta, scale, out);
}
void CpuBackend::gather_rows(const Tensor& x, const Tensor& indices, Tensor out) {
  cpu::gather_rows(x, indices, out);
}
void CpuBackend::sample(const Tensor& logits, std::span<const SamplingRow> rows,
                        int32_t* out_token_ids) {
  cpu::sample(logits, rows, out_token_ids);
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace nanovllm
