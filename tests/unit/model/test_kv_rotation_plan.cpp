// The model's use of the KV rotation: which caches get it, and v_proj/o_proj folded so that the
// projected V is R v per KV head while o_proj of the rotated attention output is unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/kv_rotation.h"
#include "model/kv_rotation_plan.h"

namespace nanovllm {
namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// y[R] = w[R, C] x[C] in double
std::vector<double> matvec(const std::vector<float>& w, const std::vector<double>& x) {
  const size_t C = x.size(), R = w.size() / C;
  std::vector<double> y(R, 0.0);
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < C; ++c) y[r] += double(w[r * C + c]) * x[c];
  return y;
}

TEST(KvRotationPlan, FloatCachesAndOddHeadDimsAreNotRotated) {
  for (KvDType t : {KvDType::F32, KvDType::F16, KvDType::BF16}) {
    EXPECT_FALSE(kv_rotation_plan(t, 64).rotate_qk);
    EXPECT_FALSE(kv_rotation_plan(t, 64).rotate_v);
  }
  for (KvDType t : {KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4}) {
    EXPECT_FALSE(kv_rotation_plan(t, 80).rotate_qk);
    EXPECT_FALSE(kv_rotation_plan(t, 80).rotate_v);
  }
}

TEST(KvRotationPlan, IntegerCachesRotateKAndVFp8OnlyWideK) {
  for (KvDType t : {KvDType::INT8, KvDType::INT4})
    for (int32_t D : {8, 64, 128}) {
      EXPECT_TRUE(kv_rotation_plan(t, D).rotate_qk) << D;
      EXPECT_TRUE(kv_rotation_plan(t, D).rotate_v) << D;
    }
  EXPECT_FALSE(kv_rotation_plan(KvDType::FP8_E4M3, 8).rotate_qk);
  EXPECT_FALSE(kv_rotation_plan(KvDType::FP8_E4M3, 32).rotate_qk);
  EXPECT_TRUE(kv_rotation_plan(KvDType::FP8_E4M3, 64).rotate_qk);
  EXPECT_TRUE(kv_rotation_plan(KvDType::FP8_E4M3, 128).rotate_qk);
  EXPECT_FALSE(kv_rotation_plan(KvDType::FP8_E4M3, 128).rotate_v);
}

TEST(KvRotationPlan, FoldedVAndOProjectionsKeepTheLayerOutput) {
  const int64_t H = 24, Hq = 4, Hkv = 2, D = 8, G = Hq / Hkv;
  std::mt19937 rng(3);
  std::vector<float> v_w = random_vector(size_t(Hkv * D * H), rng);
  std::vector<float> v_b = random_vector(size_t(Hkv * D), rng);
  std::vector<float> o_w = random_vector(size_t(H * Hq * D), rng);
  std::vector<float> x_f = random_vector(size_t(H), rng);
  std::vector<double> x(x_f.begin(), x_f.end());
  auto v_rot_w = v_w, v_rot_b = v_b, o_rot_w = o_w;
  rotate_v_proj(v_rot_w, v_rot_b, Hkv, D, H);
  rotate_o_proj(o_rot_w, H, Hq, D);

  std::vector<double> v = matvec(v_w, x), v_rot = matvec(v_rot_w, x);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] += v_b[i];
    v_rot[i] += v_rot_b[i];
  }
  // The cache sees R v per KV head.
  for (int64_t h = 0; h < Hkv; ++h) {
    std::vector<float> want(v.begin() + h * D, v.begin() + (h + 1) * D);
    kv_rotate(want.data(), int32_t(D));
    for (int64_t i = 0; i < D; ++i) EXPECT_NEAR(v_rot[size_t(h * D + i)], want[size_t(i)], 1e-5);
  }
  // Attention of one key gives each q head its KV head's value; the rotated layer's o_proj
  // output equals the plain one.
  std::vector<double> attn(size_t(Hq * D)), attn_rot(size_t(Hq * D));
  for (int64_t h = 0; h < Hq; ++h)
    for (int64_t i = 0; i < D; ++i) {
      attn[size_t(h * D + i)] = v[size_t((h / G) * D + i)];
      attn_rot[size_t(h * D + i)] = v_rot[size_t((h / G) * D + i)];
    }
  std::vector<double> y = matvec(o_w, attn), y_rot = matvec(o_rot_w, attn_rot);
  double max_abs = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_NEAR(y_rot[i], y[i], 1e-5) << i;
    max_abs = std::max(max_abs, std::fabs(y[i]));
  }
  EXPECT_GT(max_abs, 0.1);
  // Folding into one side only would change the output: the test can tell.
  std::vector<double> y_half = matvec(o_w, attn_rot);
  double diff = 0;
  for (size_t i = 0; i < y.size(); ++i) diff = std::max(diff, std::fabs(y_half[i] - y[i]));
  EXPECT_GT(diff, 1e-2);
}

}  // namespace
}  // namespace nanovllm
