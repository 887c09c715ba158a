// attention_input and mlp_residual on the GPU against the CPU backend's composition, with a real
// norm weight and with a folded one (undefined: the model multiplied it into the product's
// columns), at 5 rows (the small-M kernel for 16-bit activations), 40 (cuBLASLt; folded, the
// row's RMSNorm factor applied by qkv_rope_store / silu_mul instead of a norm kernel) and 600
// (above the pending-norm bound: rms_norm with a unit weight when folded), for every activation
// dtype, BF16 and INT8 caches. Outputs and the cache's written rows are compared.
#include "common/backend_op_cases.h"
#include "gpu_test_util.h"
#include "kv_cache_checks.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

constexpr float kEps = 1e-6f;

// The norm weight of a case: random in [0.5, 1.5], or none (folded: a unit weight).
struct NormCase {
  std::vector<float> host;
  DeviceArray device;
  Tensor host_tensor_or_none() {
    return host.empty() ? Tensor{} : host_tensor(host, {int64_t(host.size())});
  }
  Tensor device_tensor_or_none() const { return host.empty() ? Tensor{} : device.tensor; }
};

NormCase make_norm(Gpu& gpu, DType dt, int64_t H, bool folded, Rng& rng) {
  NormCase n;
  if (folded) return n;
  n.host = rounded(dt, random_floats(size_t(H), rng, 0.5f, 1.5f));
  n.device = gpu.floats(dt, n.host, {H});
  return n;
}

TEST(CudaFusedBlocks, AttentionInputMatchesCpu) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  const int32_t Hq = 4, Hkv = 2, D = 64, block_size = 16;
  const int64_t H = 256, row = int64_t(Hq + 2 * Hkv) * D;
  for (DType dt : kActDtypes)
    for (KvDType kvt : {KvDType::BF16, KvDType::INT8})
      for (int32_t T : {5, 40, 600})
        for (bool folded : {false, true}) {
          SCOPED_TRACE(std::string(dname(dt)) + " kv=" + std::string(kv_dtype_name(kvt)) + " T=" +
                       std::to_string(T) + (folded ? " folded" : " norm weight"));
          Rng rng(uint64_t(T) * 31 + int(kvt) * 7 + int(dt) + (folded ? 1000 : 0));
          testing::QkvCase c = testing::make_qkv_case(T, Hq, Hkv, D, true, 1e6, uint64_t(T) + 5);
          c.q_norm = rounded(dt, c.q_norm);
          c.k_norm = rounded(dt, c.k_norm);
          std::vector<float> x = rounded(dt, random_floats(size_t(T * H), rng, -3.f, 3.f));
          std::vector<float> w = rounded(dt, random_floats(size_t(row * H), rng, -0.1f, 0.1f));
          NormCase norm = make_norm(gpu, dt, H, folded, rng);

          const int32_t num_blocks = (T + block_size - 1) / block_size + 2;
          CachePair cache(gpu, kvt, num_blocks, block_size, Hkv, D, rng);
          std::vector<int64_t> slots = cache.random_slots(T, rng);
          slots[1] = -1;  // a padding row: nothing stored
          const bool quantized = kv_is_quantized(kvt);

          auto dx = gpu.floats(dt, x, {T, H});
          auto dw = gpu.floats(dt, w, {row, H});
          auto dpos = gpu.ints(c.positions, {T});
          auto dslots = gpu.ints(slots, {T});
          auto dinv = gpu.floats(DType::F32, c.inv_freq, {D / 2});
          auto dqn = gpu.floats(dt, c.q_norm, {D});
          auto dkn = gpu.floats(dt, c.k_norm, {D});
          QkvSpec dspec{Hq, Hkv, D, dqn.tensor, dkn.tensor, kEps, dinv.tensor, quantized};
          QkvSpec hspec{Hq, Hkv, D, host_tensor(c.q_norm, {D}), host_tensor(c.k_norm, {D}), kEps,
                        host_tensor(c.inv_freq, {D / 2}), quantized};
          auto dnormed = gpu.poisoned(dt, {T, H});
          auto dqkv = gpu.poisoned(dt, {T, row});
          auto dq = gpu.poisoned(dt, {T, int64_t(Hq) * D});
          gpu.backend().attention_input(dx.tensor, norm.device_tensor_or_none(), kEps, dw.tensor,
                                        nullptr, dspec, dpos.tensor, dslots.tensor,
                                        cache.device_layer(), dnormed.tensor, dqkv.tensor,
                                        dq.tensor);

          std::vector<float> normed(size_t(T * H)), qkv(size_t(T * row));
          std::vector<float> q_want(size_t(T) * Hq * D);
          cpu->attention_input(host_tensor(x, {T, H}), norm.host_tensor_or_none(), kEps,
                               host_tensor(w, {row, H}), nullptr, hspec,
                               host_tensor(c.positions, {T}), host_tensor(slots, {T}),
                               cache.host_layer(), host_tensor(normed, {T, H}),
                               host_tensor(qkv, {T, row}),
                               host_tensor(q_want, {T, int64_t(Hq) * D}));
          std::vector<float> q_got = gpu.read(dq);
          ASSERT_TRUE(all_finite(q_got));
          EXPECT_LT(normalized_error(q_got, q_want), tolerance(dt, 1e-5)) << "q";
          for (bool value_cache : {false, true}) {
            SCOPED_TRACE(value_cache ? "v cache" : "k cache");
            std::vector<float> got = cache.device_dequantized(gpu, value_cache);
            ASSERT_TRUE(all_finite(got));
            // Both caches went through a product rounded to dt, so the tolerance is dt's.
            EXPECT_LT(normalized_error(got, cache.host_dequantized(value_cache)),
                      std::max(cache_tolerance(dt, kvt), tolerance(dt)));
          }
        }
}

TEST(CudaFusedBlocks, MlpResidualMatchesCpu) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  const int64_t H = 256, I = 384;
  for (DType dt : kActDtypes)
    for (int64_t T : {5, 40, 600})
      for (bool folded : {false, true}) {
        SCOPED_TRACE(std::string(dname(dt)) + " T=" + std::to_string(T) +
                     (folded ? " folded" : " norm weight"));
        Rng rng(uint64_t(T) * 131 + int(dt) + (folded ? 1000 : 0));
        std::vector<float> r0 = rounded(dt, random_floats(size_t(T * H), rng, -3.f, 3.f));
        std::vector<float> gu_w = rounded(dt, random_floats(size_t(2 * I * H), rng, -0.1f, 0.1f));
        std::vector<float> down_w = rounded(dt, random_floats(size_t(H * I), rng, -0.1f, 0.1f));
        NormCase norm = make_norm(gpu, dt, H, folded, rng);
        auto dres = gpu.floats(dt, r0, {T, H});
        auto dgu_w = gpu.floats(dt, gu_w, {2 * I, H});
        auto ddown_w = gpu.floats(dt, down_w, {H, I});
        auto dnormed = gpu.poisoned(dt, {T, H});
        auto dgu = gpu.poisoned(dt, {T, 2 * I});
        auto dact = gpu.poisoned(dt, {T, I});
        gpu.backend().mlp_residual(norm.device_tensor_or_none(), kEps, dgu_w.tensor,
                                   ddown_w.tensor, dnormed.tensor, dgu.tensor, dact.tensor,
                                   dres.tensor);
        std::vector<float> want = r0, normed(size_t(T * H)), gu(size_t(T * 2 * I)),
                           act(size_t(T * I));
        cpu->mlp_residual(norm.host_tensor_or_none(), kEps, host_tensor(gu_w, {2 * I, H}),
                          host_tensor(down_w, {H, I}), host_tensor(normed, {T, H}),
                          host_tensor(gu, {T, 2 * I}), host_tensor(act, {T, I}),
                          host_tensor(want, {T, H}));
        expect_residual_matches(gpu.read(dres), want, r0, dt);
      }
}

}  // namespace
}  // namespace nanovllm
