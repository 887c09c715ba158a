#pragma once
// Runs one paged-attention case (tests/common/backend_op_cases.h) on the GPU and on the CPU
// backend with the same queries (rounded to the activation dtype) and the same cache bytes.
#include "common/backend_op_cases.h"
#include "gpu_test_util.h"

namespace nanovllm::gpu_test {

struct AttentionResult {
  std::vector<float> gpu, cpu;
};

// Device copies of a case's cache and metadata.
struct DeviceAttentionCase {
  DeviceArray k, v, ks, vs, q, cu, ctx, tables;
  PagedKvLayer layer;
  AttentionMeta meta;
};

inline DeviceAttentionCase upload_case(Gpu& gpu, testing::PagedAttentionCase& c, DType dt) {
  DeviceAttentionCase d;
  const auto& s = c.spec;
  d.k = gpu.bytes(c.k_cache.data(), c.k_cache.size());
  d.v = gpu.bytes(c.v_cache.data(), c.v_cache.size());
  d.ks = gpu.bytes(c.k_scale.data(), c.k_scale.size() * 4);
  d.vs = gpu.bytes(c.v_scale.data(), c.v_scale.size() * 4);
  d.layer = c.layer(d.k.buffer.data(), d.v.buffer.data(), static_cast<float*>(d.ks.buffer.data()),
                    static_cast<float*>(d.vs.buffer.data()));
  d.q = gpu.floats(dt, c.q, {c.num_tokens, int64_t(s.num_heads) * s.head_dim});
  d.cu = gpu.ints(c.cu_seqlens_q, {int64_t(c.cu_seqlens_q.size())});
  d.ctx = gpu.ints(c.context_lens, {int64_t(c.context_lens.size())});
  d.tables = gpu.ints(c.block_tables, {int64_t(c.block_tables.size())});
  d.meta = c.host_meta();
  d.meta.cu_seqlens_q = d.cu.tensor.ptr<int32_t>();
  d.meta.context_lens = d.ctx.tensor.ptr<int32_t>();
  d.meta.block_tables = d.tables.tensor.ptr<int32_t>();
  return d;
}

inline AttentionResult run_attention_case(Gpu& gpu, Backend& cpu, testing::PagedAttentionCase& c,
                                          DType dt, float scale) {
  c.q = rounded(dt, c.q);
  const auto& s = c.spec;
  const int64_t T = c.num_tokens, HD = int64_t(s.num_heads) * s.head_dim;
  DeviceAttentionCase d = upload_case(gpu, c, dt);
  auto out = gpu.poisoned(dt, {T, HD});
  gpu.backend().paged_attention(d.q.tensor, d.layer, d.meta, scale, out.tensor);
  AttentionResult r;
  r.gpu = gpu.read(out);
  r.cpu.assign(size_t(T * HD), 0.f);
  cpu.paged_attention(testing::host_tensor(c.q, {T, HD}), c.host_layer(), c.host_meta(), scale,
                      testing::host_tensor(r.cpu, {T, HD}));
  return r;
}

}  // namespace nanovllm::gpu_test
