// CUDA graph capture of a decode-like step (qkv_rope_store into the paged cache, decode
// attention, a product added into the residual, RMSNorm + product, linear to F32 logits; at 4
// rows the fused small-M kernels): replays equal the eager run, also
// after the inputs change in place between replays.
#include "attention_case_runner.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

TEST(CudaGraph, ReplayEqualsEager) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  for (KvDType kvt : {KvDType::BF16, KvDType::INT8}) {
    SCOPED_TRACE(std::string(kv_dtype_name(kvt)));
    Gpu gpu;
    Backend& be = gpu.backend();
    const DType dt = DType::BF16;
    testing::PagedAttentionSpec spec;
    spec.q_lens = {1, 1, 1, 1};
    spec.context_lens = {5, 300, 17, 900};
    spec.num_heads = 16;
    spec.num_kv_heads = 8;
    spec.head_dim = 128;
    spec.dtype = kvt;
    testing::PagedAttentionCase c = testing::make_paged_attention_case(spec, 42);
    DeviceAttentionCase d = upload_case(gpu, c, dt);
    const int64_t B = 4, Hq = 16, Hkv = 8, D = 128, H = Hq * D, V = 1000;
    Rng rng(7);
    auto qkv = gpu.floats(dt, random_floats(size_t(B * (Hq + 2 * Hkv) * D), rng), {B, (Hq + 2 * Hkv) * D});
    auto pos = gpu.ints(c.positions, {B});
    auto slots = gpu.ints(c.slot_mapping, {B});
    std::vector<float> inv_freq;
    for (int i = 0; i < D / 2; ++i) inv_freq.push_back(float(1.0 / std::pow(1e6, 2.0 * i / D)));
    auto dinv = gpu.floats(DType::F32, inv_freq, {D / 2});
    auto qn = gpu.floats(dt, random_floats(size_t(D), rng, 0.5f, 1.5f), {D});
    auto kn = gpu.floats(dt, random_floats(size_t(D), rng, 0.5f, 1.5f), {D});
    QkvSpec qspec{int32_t(Hq), int32_t(Hkv), int32_t(D), qn.tensor, kn.tensor, 1e-6f, dinv.tensor};
    auto q = gpu.poisoned(dt, {B, H});
    auto attn = gpu.poisoned(dt, {B, H});
    auto residual = gpu.floats(dt, random_floats(size_t(B * H), rng), {B, H});
    auto normw = gpu.floats(dt, random_floats(size_t(H), rng, 0.5f, 1.5f), {H});
    auto normed = gpu.poisoned(dt, {B, H});
    auto w = gpu.floats(dt, random_floats(size_t(V * H), rng, -0.05f, 0.05f), {V, H});
    auto wo = gpu.floats(dt, random_floats(size_t(H * H), rng, -0.05f, 0.05f), {H, H});
    auto mixed = gpu.poisoned(dt, {B, H});
    auto logits = gpu.poisoned(DType::F32, {B, V});
    AttentionMeta meta = d.meta;
    meta.max_context_len = 4096;  // captured for longer contexts than today's

    // The residual is updated in place by each run: restore it before each comparison.
    std::vector<float> residual0 = gpu.read(residual);
    auto step = [&] {
      be.qkv_rope_store(qkv.tensor, qspec, pos.tensor, slots.tensor, d.layer, q.tensor);
      be.paged_attention(q.tensor, d.layer, meta, 1.f / std::sqrt(float(D)), attn.tensor);
      be.linear_residual(attn.tensor, wo.tensor, nullptr, residual.tensor);
      be.norm_linear(residual.tensor, normw.tensor, 1e-6f, wo.tensor, nullptr, normed.tensor,
                     mixed.tensor);
      be.linear(mixed.tensor, w.tensor, nullptr, logits.tensor);
    };
    auto reset_residual = [&] {
      std::vector<uint8_t> enc = encode(dt, residual0);
      be.copy_from_host(residual.buffer.data(), enc.data(), enc.size());
    };
    reset_residual();
    step();
    std::vector<float> eager = gpu.read(logits);
    ASSERT_TRUE(all_finite(eager));

    reset_residual();
    std::unique_ptr<CapturedStep> graph = be.capture(step);
    ASSERT_NE(graph, nullptr);
    for (int round = 0; round < 2; ++round) {
      reset_residual();
      std::vector<float> poison(size_t(B * V), NAN);
      be.copy_from_host(logits.buffer.data(), poison.data(), poison.size() * 4);
      graph->replay();
      std::vector<float> replayed = gpu.read(logits);
      EXPECT_EQ(replayed, eager) << "replay " << round;
    }
    // New inputs in the same buffers: the graph must follow them.
    std::vector<uint8_t> enc = encode(dt, random_floats(size_t(B * (Hq + 2 * Hkv) * D), rng));
    be.copy_from_host(qkv.buffer.data(), enc.data(), enc.size());
    reset_residual();
    step();
    eager = gpu.read(logits);
    reset_residual();
    graph->replay();
    EXPECT_EQ(gpu.read(logits), eager) << "replay after new inputs";

    // A later eager decode needing a larger split-K workspace (G = 8: four times the query
    // heads): the graph captured before keeps its workspace (retired, not freed).
    testing::PagedAttentionSpec wide = spec;
    wide.num_heads = 64;
    testing::PagedAttentionCase cw = testing::make_paged_attention_case(wide, 43);
    DeviceAttentionCase dw = upload_case(gpu, cw, dt);
    dw.meta.max_context_len = 4096;
    auto qw = gpu.floats(dt, cw.q, {B, 64 * D});
    auto ow = gpu.poisoned(dt, {B, 64 * D});
    be.paged_attention(qw.tensor, dw.layer, dw.meta, 1.f / std::sqrt(float(D)), ow.tensor);
    ASSERT_TRUE(all_finite(gpu.read(ow)));
    reset_residual();
    graph->replay();
    EXPECT_EQ(gpu.read(logits), eager) << "replay after the workspace grew";
  }
}

}  // namespace
}  // namespace nanovllm
