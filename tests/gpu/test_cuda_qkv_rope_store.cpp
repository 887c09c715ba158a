// qkv_rope_store on the GPU against the CPU backend: q out, and the whole paged cache (values and
// scales) after the store, for every activation dtype x KV dtype, with and without q/k norm, with
// and without the q/K rotation (rotate_qk), GQA, head_dim 32, 64 and 128, and slot -1 (padding)
// rows that must leave the cache untouched.
#include "common/backend_op_cases.h"
#include "gpu_test_util.h"
#include "kv_cache_checks.h"

namespace nanovllm {
namespace {

using namespace gpu_test;

constexpr KvDType kKvDtypes[] = {KvDType::F32, KvDType::F16, KvDType::BF16,
                                 KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4};

TEST(CudaQkvRopeStore, MatchesCpuForEveryDtype) {
  NANOVLLM_SKIP_WITHOUT_GPU();
  Gpu gpu;
  auto cpu = make_cpu_backend();
  struct Shape { int32_t T, Hq, Hkv, D; bool norm; };
  const Shape shapes[] = {{7, 4, 4, 64, true}, {97, 8, 2, 128, true}, {1, 16, 2, 128, false},
                          {33, 8, 1, 64, false}, {9, 4, 2, 32, true}};
  for (DType dt : kActDtypes) {
    for (KvDType kvt : kKvDtypes) {
      for (const Shape& s : shapes)
        for (bool rotate : {false, true}) {
        SCOPED_TRACE(std::string(dname(dt)) + " kv=" + std::string(kv_dtype_name(kvt)) + " T=" +
                     std::to_string(s.T) + " Hq=" + std::to_string(s.Hq) + " Hkv=" +
                     std::to_string(s.Hkv) + " D=" + std::to_string(s.D) + (s.norm ? " norm" : "") +
                     (rotate ? " rotate" : ""));
        testing::QkvCase c = testing::make_qkv_case(s.T, s.Hq, s.Hkv, s.D, s.norm, 1e6,
                                                    uint64_t(s.T * 17 + s.D) + int(kvt));
        c.qkv = rounded(dt, c.qkv);
        c.q_norm = rounded(dt, c.q_norm);
        c.k_norm = rounded(dt, c.k_norm);
        const int32_t block_size = 16, num_blocks = (s.T + block_size - 1) / block_size + 2;
        Rng rng(99);
        CachePair cache(gpu, kvt, num_blocks, block_size, s.Hkv, s.D, rng);
        // Distinct random slots; every fifth token is padding (-1).
        std::vector<int64_t> slots = cache.random_slots(s.T, rng);
        for (int32_t t = 0; t < s.T; t += 5) slots[size_t(t)] = -1;
        const PagedKvLayer dl = cache.device_layer(), hl = cache.host_layer();

        const int64_t row = int64_t(s.Hq + 2 * s.Hkv) * s.D;
        auto dqkv = gpu.floats(dt, c.qkv, {s.T, row});
        auto dpos = gpu.ints(c.positions, {s.T});
        auto dslots = gpu.ints(slots, {s.T});
        auto dinv = gpu.floats(DType::F32, c.inv_freq, {s.D / 2});
        DeviceArray dqn, dkn;
        QkvSpec dspec{s.Hq, s.Hkv, s.D, {}, {}, 1e-6f, dinv.tensor};
        QkvSpec hspec{s.Hq, s.Hkv, s.D, {}, {}, 1e-6f, host_tensor(c.inv_freq, {s.D / 2})};
        dspec.rotate_qk = hspec.rotate_qk = rotate;
        if (s.norm) {
          dqn = gpu.floats(dt, c.q_norm, {s.D});
          dkn = gpu.floats(dt, c.k_norm, {s.D});
          dspec.q_norm = dqn.tensor;
          dspec.k_norm = dkn.tensor;
          hspec.q_norm = host_tensor(c.q_norm, {s.D});
          hspec.k_norm = host_tensor(c.k_norm, {s.D});
        }
        auto dq = gpu.poisoned(dt, {s.T, int64_t(s.Hq) * s.D});
        gpu.backend().qkv_rope_store(dqkv.tensor, dspec, dpos.tensor, dslots.tensor, dl, dq.tensor);

        std::vector<float> q_want(size_t(s.T) * s.Hq * s.D);
        cpu->qkv_rope_store(host_tensor(c.qkv, {s.T, row}), hspec, host_tensor(c.positions, {s.T}),
                            host_tensor(slots, {s.T}), hl, host_tensor(q_want, {s.T, int64_t(s.Hq) * s.D}));
        std::vector<float> q_got = gpu.read(dq);
        ASSERT_TRUE(all_finite(q_got));
        EXPECT_LT(normalized_error(q_got, q_want), tolerance(dt, 1e-5)) << "q";

        for (bool value_cache : {false, true}) {
          SCOPED_TRACE(value_cache ? "v cache" : "k cache");
          const CachePair::Contents got = cache.device_contents(gpu, value_cache);
          std::vector<float> got_f = dequantized(got.bytes, got.scales, kvt, cache.rows, s.D);
          std::vector<float> want_f = cache.host_dequantized(value_cache);
          ASSERT_TRUE(all_finite(got_f));
          // V is stored as given: the same bytes as the CPU. K went through norm/RoPE (and the
          // rotation) in float on both sides; a rare one-step difference in the last bit/quantum
          // is allowed (cache_tolerance).
          if (value_cache) {
            EXPECT_EQ(got.bytes, cache.v) << "v cache bytes";
          }
          EXPECT_LT(normalized_error(got_f, want_f), cache_tolerance(dt, kvt));
          if (kv_is_quantized(kvt)) {
            const auto& want_scales = value_cache ? cache.v_scale : cache.k_scale;
            EXPECT_LT(normalized_error(got.scales, want_scales), 1e-5) << "scales";
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace nanovllm
