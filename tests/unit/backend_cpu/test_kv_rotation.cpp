// core/kv_rotation.h's R = H S against the explicit matrix, and the CPU backend's attention with
// rotate_qk (and V stored rotated, as the model's folded v_proj gives it) equal to the unrotated
// attention for float caches: prefill, a chunk over the cached prefix, and a decode step.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/backend_op_cases.h"
#include "core/kv_rotation.h"

namespace nanovllm {
namespace {

using testing::host_tensor;

// R_ij = (-1)^popcount(i & j) * s_j / sqrt(D) (Sylvester's Hadamard order), in double.
double explicit_r(int32_t i, int32_t j, int32_t D) {
  const double h = (std::popcount(uint32_t(i & j)) & 1) ? -1.0 : 1.0;
  return h * kv_rotation_sign(j) / std::sqrt(double(D));
}

// x = R^T x = S H x, through kv_rotate: H x = R (S x) since S S = I.
void unrotate(float* x, int32_t D) {
  for (int32_t i = 0; i < D; ++i) x[i] *= kv_rotation_sign(i);
  kv_rotate(x, D);
  for (int32_t i = 0; i < D; ++i) x[i] *= kv_rotation_sign(i);
}

TEST(KvRotation, IsTheOrthogonalMatrixHS) {
  for (int32_t D : {2, 4, 8, 32, 64, 128, 256}) {
    SCOPED_TRACE(D);
    std::vector<float> r(size_t(D) * D);  // column j = R e_j, stored as row j
    for (int32_t j = 0; j < D; ++j) {
      float* col = r.data() + size_t(j) * D;
      col[j] = 1.f;
      kv_rotate(col, D);
      for (int32_t i = 0; i < D; ++i) ASSERT_NEAR(col[i], explicit_r(i, j, D), 1e-6);
    }
    for (int32_t a = 0; a < D; ++a)
      for (int32_t b = 0; b < D; ++b) {
        double dot = 0;
        for (int32_t i = 0; i < D; ++i) dot += double(r[size_t(a) * D + i]) * r[size_t(b) * D + i];
        ASSERT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-6) << a << " " << b;
      }
  }
  int negative = 0;
  for (int32_t i = 0; i < 128; ++i) negative += kv_rotation_sign(i) < 0;
  EXPECT_GT(negative, 32);  // S is not the identity
  EXPECT_LT(negative, 96);
  EXPECT_TRUE(kv_rotation_supported(64));
  EXPECT_FALSE(kv_rotation_supported(48));
  EXPECT_FALSE(kv_rotation_supported(1));
}

// One sequence of 22 tokens through qkv_rope_store + paged_attention in three steps (a 10-token
// prefill, an 11-token chunk over the cached prefix, one decode token). rotate: q/K rotated by
// the op, V rows of qkv pre-rotated (what the folded v_proj yields), outputs un-rotated per q head.
std::vector<float> run_steps(KvDType t, int32_t Hq, int32_t Hkv, int32_t D, bool rotate,
                             uint64_t seed) {
  constexpr int32_t kTokens = 22, kBlock = 16;
  testing::QkvCase qc = testing::make_qkv_case(kTokens, Hq, Hkv, D, true, 1e4, seed);
  const int64_t row = int64_t(Hq + 2 * Hkv) * D;
  if (rotate)
    for (int32_t tok = 0; tok < kTokens; ++tok)
      for (int32_t h = 0; h < Hkv; ++h) kv_rotate(qc.qkv.data() + tok * row + (Hq + Hkv + h) * D, D);
  const int32_t blocks = 2;
  std::vector<uint8_t> k(size_t(blocks) * kBlock * Hkv * kv_head_bytes(t, D)), v(k.size());
  PagedKvLayer kv{k.data(), v.data(), nullptr, nullptr, t, blocks, kBlock, Hkv, D};
  QkvSpec spec{Hq, Hkv, D, host_tensor(qc.q_norm, {D}), host_tensor(qc.k_norm, {D}), 1e-6f,
               host_tensor(qc.inv_freq, {D / 2}), rotate};
  std::vector<int32_t> block_table = {1, 0};  // logical block 0 lives in physical block 1
  CpuBackend be;
  std::vector<float> out(size_t(kTokens) * Hq * D, NAN);
  int32_t done = 0;
  for (int32_t len : {10, 11, 1}) {
    std::vector<int32_t> pos(static_cast<size_t>(len));
    std::vector<int64_t> slots(static_cast<size_t>(len));
    for (int32_t j = 0; j < len; ++j) {
      pos[size_t(j)] = done + j;
      slots[size_t(j)] = int64_t(block_table[size_t((done + j) / kBlock)]) * kBlock + (done + j) % kBlock;
    }
    std::vector<float> q(size_t(len) * Hq * D);
    std::vector<float> qkv(qc.qkv.begin() + done * row, qc.qkv.begin() + (done + len) * row);
    be.qkv_rope_store(host_tensor(qkv, {len, row}), spec, host_tensor(pos, {len}),
                      host_tensor(slots, {len}), kv, host_tensor(q, {len, int64_t(Hq) * D}));
    std::vector<int32_t> cu = {0, len}, ctx = {done + len};
    AttentionMeta meta{cu.data(), ctx.data(), block_table.data(), 1, 2, len, done + len};
    std::vector<float> o(q.size(), NAN);
    be.paged_attention(host_tensor(q, {len, int64_t(Hq) * D}), kv, meta,
                       1.f / std::sqrt(float(D)), host_tensor(o, {len, int64_t(Hq) * D}));
    if (rotate)
      for (int32_t r = 0; r < len * Hq; ++r) unrotate(o.data() + size_t(r) * D, D);
    std::copy(o.begin(), o.end(), out.begin() + ptrdiff_t(done) * Hq * D);
    done += len;
  }
  return out;
}

TEST(KvRotation, AttentionUnchangedForFloatCaches) {
  for (KvDType t : {KvDType::F32, KvDType::BF16})
    for (int32_t D : {8, 64, 128})
      for (int32_t Hkv : {1, 2, 4}) {
        SCOPED_TRACE(::testing::Message() << kv_dtype_name(t) << " D=" << D << " Hkv=" << Hkv);
        const uint64_t seed = uint64_t(D * 10 + Hkv);
        std::vector<float> plain = run_steps(t, 4, Hkv, D, false, seed);
        std::vector<float> rotated = run_steps(t, 4, Hkv, D, true, seed);
        ASSERT_FALSE(testing::has_non_finite(plain));
        ASSERT_FALSE(testing::has_non_finite(rotated));
        double max_err = 0, max_abs = 0;
        for (size_t i = 0; i < plain.size(); ++i) {
          max_err = std::max(max_err, std::fabs(double(plain[i]) - rotated[i]));
          max_abs = std::max(max_abs, std::fabs(double(plain[i])));
        }
        EXPECT_GT(max_abs, 0.1);
        // BF16 rounds the rotated and the unrotated rows differently (2^-8 relative each).
        EXPECT_LT(max_err, t == KvDType::F32 ? 2e-5 : 2e-2 * max_abs);
      }
}

}  // namespace
}  // namespace nanovllm
