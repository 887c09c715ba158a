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
using testing::Rng;
using testing::host_tensor;
using testing::random_floats;

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
        const int64_t rows = int64_t(num_blocks) * block_size * s.Hkv;
        const int64_t hb = kv_head_bytes(kvt, s.D);
        Rng rng(99);
        // Distinct random slots; every fifth token is padding (-1).
        std::vector<int64_t> slots(size_t(num_blocks) * block_size);
        for (size_t i = 0; i < slots.size(); ++i) slots[i] = int64_t(i);
        std::shuffle(slots.begin(), slots.end(), rng.engine());
        slots.resize(size_t(s.T));
        for (int32_t t = 0; t < s.T; t += 5) slots[size_t(t)] = -1;
        // Identical junk in both caches (valid encodings), so untouched rows must stay equal.
        std::vector<uint8_t> k_cache(size_t(rows * hb)), v_cache(size_t(rows * hb));
        std::vector<float> junk = random_floats(size_t(s.D), rng);
        std::vector<float> k_scale(size_t(rows), 0.75f), v_scale(size_t(rows), 0.5f);
        for (int64_t r = 0; r < rows; ++r) {
          kv_store_head(junk.data(), s.D, kvt, k_cache.data() + r * hb);
          kv_store_head(junk.data(), s.D, kvt, v_cache.data() + r * hb);
        }
        auto dk = gpu.bytes(k_cache.data(), k_cache.size());
        auto dv = gpu.bytes(v_cache.data(), v_cache.size());
        auto dks = gpu.bytes(k_scale.data(), k_scale.size() * 4);
        auto dvs = gpu.bytes(v_scale.data(), v_scale.size() * 4);
        PagedKvLayer dl{dk.buffer.data(), dv.buffer.data(), static_cast<float*>(dks.buffer.data()),
                        static_cast<float*>(dvs.buffer.data()), kvt, num_blocks, block_size, s.Hkv, s.D};
        PagedKvLayer hl{k_cache.data(), v_cache.data(), k_scale.data(), v_scale.data(), kvt,
                        num_blocks, block_size, s.Hkv, s.D};
        if (!kv_is_quantized(kvt)) dl.k_scale = dl.v_scale = hl.k_scale = hl.v_scale = nullptr;

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

        std::vector<uint8_t> gk = gpu.read_bytes(dk.buffer.data(), k_cache.size());
        std::vector<uint8_t> gv = gpu.read_bytes(dv.buffer.data(), v_cache.size());
        std::vector<float> gks(k_scale.size()), gvs(v_scale.size());
        gpu.backend().copy_to_host(gks.data(), dks.buffer.data(), gks.size() * 4);
        gpu.backend().copy_to_host(gvs.data(), dvs.buffer.data(), gvs.size() * 4);
        for (int which = 0; which < 2; ++which) {
          const auto& got_bytes = which ? gv : gk;
          const auto& want_bytes = which ? v_cache : k_cache;
          const auto& got_sc = which ? gvs : gks;
          const auto& want_sc = which ? v_scale : k_scale;
          std::vector<float> got = dequantized(got_bytes, got_sc, kvt, rows, s.D);
          std::vector<float> want = dequantized(want_bytes, want_sc, kvt, rows, s.D);
          ASSERT_TRUE(all_finite(got));
          // V is stored as given: the same bytes as the CPU. K went through norm/RoPE (and the
          // rotation) in float on both sides; a rare one-step difference in the last bit/quantum
          // is allowed (cache_tolerance).
          if (which == 1) {
            EXPECT_EQ(got_bytes, want_bytes) << "v cache bytes";
          }
          EXPECT_LT(normalized_error(got, want), cache_tolerance(dt, kvt))
              << (which ? "v" : "k") << " cache";
          EXPECT_LT(normalized_error(got_sc, want_sc), 1e-5) << "scales";
        }
      }
    }
  }
}

}  // namespace
}  // namespace nanovllm
