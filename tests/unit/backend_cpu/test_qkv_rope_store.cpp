// qkv_rope_store: q/k per-head RMSNorm, NeoX RoPE, optional q/K rotation (core/kv_rotation.h), K/V
// stored (quantized per dtype) at the slot mapping, -1 slots skipped, untouched slots left as they
// were.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <set>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "core/error.h"
#include "core/kv_rotation.h"

namespace nanovllm {
namespace {

using testing::host_tensor;
using testing::make_qkv_case;
using testing::QkvCase;
using testing::Rng;

constexpr KvDType kAll[] = {KvDType::F32,  KvDType::F16,      KvDType::BF16,
                            KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4};

struct Cache {
  std::vector<uint8_t> k, v;         // [num_blocks, block_size, Hkv, head_bytes]
  std::vector<float> k_scale, v_scale;  // [num_blocks, block_size, Hkv]
  PagedKvLayer layer;
};

constexpr uint8_t kSentinel = 0x5a;
constexpr float kScaleSentinel = -7.f;

Cache make_cache(KvDType t, int32_t blocks, int32_t bs, int32_t Hkv, int32_t D) {
  Cache c;
  const size_t rows = size_t(blocks) * bs * Hkv;
  c.k.assign(rows * kv_head_bytes(t, D), kSentinel);
  c.v.assign(rows * kv_head_bytes(t, D), kSentinel);
  c.k_scale.assign(rows, kScaleSentinel);
  c.v_scale.assign(rows, kScaleSentinel);
  c.layer.k = c.k.data();
  c.layer.v = c.v.data();
  c.layer.k_scale = kv_is_quantized(t) ? c.k_scale.data() : nullptr;
  c.layer.v_scale = kv_is_quantized(t) ? c.v_scale.data() : nullptr;
  c.layer.dtype = t;
  c.layer.num_blocks = blocks;
  c.layer.block_size = bs;
  c.layer.num_kv_heads = Hkv;
  c.layer.head_dim = D;
  return c;
}

// Largest allowed |stored - exact| for one element of a vector with the given scale.
double element_bound(KvDType t, double exact, double scale) {
  const double slack = 1e-5 * std::max(1.0, std::fabs(exact));  // float vs double K
  switch (t) {
    case KvDType::F32: return slack;
    case KvDType::F16: return std::fabs(exact) * std::ldexp(1.0, -11) + slack;
    case KvDType::BF16: return std::fabs(exact) * std::ldexp(1.0, -8) + slack;
    case KvDType::INT8:
    case KvDType::INT4: return scale / 2 + slack;
    case KvDType::FP8_E4M3:
      return scale * std::max(std::fabs(exact) / scale * 0.0625, 0.0009765625) + slack;
  }
  return 0;
}

// x[n, D] = R x per D-vector, R = H S built entry by entry in double (Sylvester's Hadamard:
// H_ij = (-1)^popcount(i & j) / sqrt(D)), independent of kv_rotate's butterfly.
void rotate_rows(std::vector<double>& x, int32_t D) {
  std::vector<double> y(static_cast<size_t>(D));
  for (size_t r = 0; r < x.size() / size_t(D); ++r) {
    double* v = x.data() + r * size_t(D);
    for (int32_t i = 0; i < D; ++i) {
      double acc = 0;
      for (int32_t j = 0; j < D; ++j)
        acc += ((std::popcount(uint32_t(i & j)) & 1) ? -1.0 : 1.0) * kv_rotation_sign(j) * v[j];
      y[size_t(i)] = acc / std::sqrt(double(D));
    }
    std::copy(y.begin(), y.end(), v);
  }
}

void check_case(KvDType t, int32_t T, int32_t Hq, int32_t Hkv, int32_t D, int32_t bs,
                bool with_norm, uint64_t seed, bool rotate = false) {
  SCOPED_TRACE(::testing::Message() << kv_dtype_name(t) << " T=" << T << " Hq=" << Hq
                                    << " Hkv=" << Hkv << " D=" << D << " bs=" << bs
                                    << " norm=" << with_norm << " rotate=" << rotate);
  QkvCase qc = make_qkv_case(T, Hq, Hkv, D, with_norm, 1e6, seed);
  const int32_t blocks = (T + bs - 1) / bs + 2;
  Cache cache = make_cache(t, blocks, bs, Hkv, D);
  // Distinct random slots; every third token skipped with -1.
  Rng rng(seed + 1);
  std::vector<int64_t> all_slots(size_t(blocks) * bs);
  std::iota(all_slots.begin(), all_slots.end(), 0);
  std::shuffle(all_slots.begin(), all_slots.end(), rng.engine());
  std::vector<int64_t> slots(all_slots.begin(), all_slots.begin() + T);
  for (int32_t i = 2; i < T; i += 3) slots[size_t(i)] = -1;

  CpuBackend be;
  QkvSpec spec;
  spec.num_heads = Hq;
  spec.num_kv_heads = Hkv;
  spec.head_dim = D;
  spec.norm_eps = 1e-6f;
  spec.inv_freq = host_tensor(qc.inv_freq, {D / 2});
  spec.rotate_qk = rotate;
  if (with_norm) {
    spec.q_norm = host_tensor(qc.q_norm, {D});
    spec.k_norm = host_tensor(qc.k_norm, {D});
  }
  std::vector<float> q_out(size_t(T) * Hq * D, NAN);
  be.qkv_rope_store(host_tensor(qc.qkv, {T, (Hq + 2 * Hkv) * D}), spec,
                    host_tensor(qc.positions, {T}), host_tensor(slots, {T}), cache.layer,
                    host_tensor(q_out, {T, int64_t(Hq) * D}));
  testing::QkvReference ref = testing::reference_qkv(qc, 1e-6);
  if (rotate) {  // q out and stored K are R times the unrotated ones; V is stored as given
    rotate_rows(ref.q, D);
    rotate_rows(ref.k, D);
  }
  ASSERT_FALSE(testing::has_non_finite(q_out));
  ASSERT_LT(testing::max_abs_error(q_out, ref.q), 2e-5);

  const int64_t hb = kv_head_bytes(t, D);
  std::set<int64_t> written;
  for (int32_t tok = 0; tok < T; ++tok) {
    if (slots[size_t(tok)] < 0) continue;
    written.insert(slots[size_t(tok)]);
    for (int32_t h = 0; h < Hkv; ++h) {
      const int64_t row = slots[size_t(tok)] * Hkv + h;
      for (int pass = 0; pass < 2; ++pass) {
        const bool is_k = pass == 0;
        const std::vector<double>& want = is_k ? ref.k : ref.v;
        const double* exact = want.data() + (size_t(tok) * Hkv + h) * D;
        double absmax = 0;
        for (int32_t i = 0; i < D; ++i) absmax = std::max(absmax, std::fabs(exact[i]));
        double scale = 1;
        if (kv_is_quantized(t)) {
          scale = (is_k ? cache.k_scale : cache.v_scale)[size_t(row)];
          ASSERT_NEAR(scale, absmax / kv_qmax(t), 1e-5 * scale);
        }
        const uint8_t* base = (is_k ? cache.k : cache.v).data() + row * hb;
        for (int32_t i = 0; i < D; ++i) {
          const double got = kv_load_raw(base, t, i) * (kv_is_quantized(t) ? scale : 1.0);
          ASSERT_LE(std::fabs(got - exact[i]), element_bound(t, exact[i], scale))
              << (is_k ? "K" : "V") << " token " << tok << " head " << h << " element " << i;
        }
      }
    }
  }
  // Slots not in the mapping (the -1 tokens included) are untouched.
  for (int64_t slot = 0; slot < int64_t(blocks) * bs; ++slot) {
    if (written.count(slot)) continue;
    for (int64_t b = slot * Hkv * hb; b < (slot + 1) * Hkv * hb; ++b) {
      ASSERT_EQ(cache.k[size_t(b)], kSentinel) << "slot " << slot;
      ASSERT_EQ(cache.v[size_t(b)], kSentinel) << "slot " << slot;
    }
    for (int32_t h = 0; h < Hkv; ++h) ASSERT_EQ(cache.k_scale[size_t(slot * Hkv + h)], kScaleSentinel);
  }
}

TEST(QkvRopeStore, EveryDtypeWithAndWithoutNorm) {
  for (KvDType t : kAll)
    for (bool norm : {false, true}) check_case(t, 7, 4, 2, 64, 16, norm, 1);
}

TEST(QkvRopeStore, ShapesAndLengths) {
  uint64_t seed = 100;
  for (int32_t bs : {16, 32})
    for (int32_t T : {1, bs - 1, bs + 1, 97})
      for (int32_t ratio : {1, 2, 4, 8})
        for (int32_t D : {64, 128})
          check_case(ratio == 4 ? KvDType::INT8 : KvDType::F32, T, 8, 8 / ratio, D, bs, true,
                     seed++);
}

TEST(QkvRopeStore, RotatedQkIsTheRotationOfTheUnrotated) {
  uint64_t seed = 300;
  for (KvDType t : kAll)
    for (int32_t D : {8, 32, 64, 128})
      for (bool norm : {false, true}) check_case(t, 19, 4, 2, D, 16, norm, seed++, true);
}

TEST(QkvRopeStore, RotatedQOutEqualsKvRotateOfPlainQOut) {
  const int32_t T = 5, Hq = 4, Hkv = 1, D = 32;
  QkvCase qc = make_qkv_case(T, Hq, Hkv, D, true, 1e4, 9);
  QkvSpec spec{Hq, Hkv, D, host_tensor(qc.q_norm, {D}), host_tensor(qc.k_norm, {D}), 1e-6f,
               host_tensor(qc.inv_freq, {D / 2})};
  std::vector<int64_t> slots(size_t(T), -1);
  std::vector<float> plain(size_t(T) * Hq * D), rotated(plain.size());
  Cache cache = make_cache(KvDType::INT8, 1, 16, Hkv, D);
  for (bool rotate : {false, true}) {
    spec.rotate_qk = rotate;
    CpuBackend().qkv_rope_store(host_tensor(qc.qkv, {T, (Hq + 2 * Hkv) * D}), spec,
                                host_tensor(qc.positions, {T}), host_tensor(slots, {T}),
                                cache.layer, host_tensor(rotate ? rotated : plain, {T, Hq * D}));
  }
  for (int32_t r = 0; r < T * Hq; ++r) kv_rotate(plain.data() + size_t(r) * D, D);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(rotated[i], plain[i]) << i;
}

TEST(QkvRopeStore, RotationNeedsPowerOfTwoHeadDim) {
  QkvCase qc = make_qkv_case(2, 2, 1, 12, false, 1e4, 7);
  Cache cache = make_cache(KvDType::INT8, 1, 16, 1, 12);
  QkvSpec spec{2, 1, 12, {}, {}, 1e-6f, host_tensor(qc.inv_freq, {6})};
  std::vector<int64_t> slots = {0, 1};
  std::vector<float> q_out(2 * 24);
  auto run = [&] {
    CpuBackend().qkv_rope_store(host_tensor(qc.qkv, {2, 48}), spec, host_tensor(qc.positions, {2}),
                                host_tensor(slots, {2}), cache.layer, host_tensor(q_out, {2, 24}));
  };
  EXPECT_NO_THROW(run());
  spec.rotate_qk = true;
  EXPECT_THROW(run(), Error);
}

TEST(QkvRopeStore, WithoutRope) {
  // An undefined inv_freq skips RoPE: q_out is the (normed) q as it came.
  QkvCase qc = make_qkv_case(3, 2, 1, 8, false, 1e4, 5);
  Cache cache = make_cache(KvDType::F32, 1, 16, 1, 8);
  std::vector<int64_t> slots = {0, 1, 2};
  QkvSpec spec;
  spec.num_heads = 2;
  spec.num_kv_heads = 1;
  spec.head_dim = 8;
  std::vector<float> q_out(3 * 16);
  CpuBackend().qkv_rope_store(host_tensor(qc.qkv, {3, 32}), spec, host_tensor(qc.positions, {3}),
                              host_tensor(slots, {3}), cache.layer, host_tensor(q_out, {3, 16}));
  for (int t = 0; t < 3; ++t)
    for (int i = 0; i < 16; ++i) EXPECT_EQ(q_out[size_t(t * 16 + i)], qc.qkv[size_t(t * 32 + i)]);
}

TEST(QkvRopeStore, RejectsBadSlotsAndShapes) {
  QkvCase qc = make_qkv_case(2, 2, 1, 8, false, 1e4, 6);
  Cache cache = make_cache(KvDType::INT8, 1, 16, 1, 8);
  QkvSpec spec;
  spec.num_heads = 2;
  spec.num_kv_heads = 1;
  spec.head_dim = 8;
  spec.inv_freq = host_tensor(qc.inv_freq, {4});
  std::vector<float> q_out(2 * 16);
  std::vector<int64_t> slots = {0, 16};  // 16 is past the one block of 16 slots
  CpuBackend be;
  auto run = [&] {
    be.qkv_rope_store(host_tensor(qc.qkv, {2, 32}), spec, host_tensor(qc.positions, {2}),
                      host_tensor(slots, {2}), cache.layer, host_tensor(q_out, {2, 16}));
  };
  EXPECT_THROW(run(), Error);
  slots = {0, -1};
  EXPECT_NO_THROW(run());
  cache.layer.k_scale = nullptr;  // quantized cache without scales
  EXPECT_THROW(run(), Error);
  cache.layer.k_scale = cache.k_scale.data();
  spec.num_kv_heads = 2;  // qkv width no longer matches
  EXPECT_THROW(run(), Error);
}

}  // namespace
}  // namespace nanovllm
