#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/half.h"
#include "model/dummy_weights.h"
#include "model/tensor_names.h"

namespace nanovllm {
namespace {

TEST(DummyWeights, DeterministicPerNameIndependentOfOrder) {
  const std::vector<int64_t> shape{37, 53};
  auto a = make_dummy_weights(7);
  auto b = make_dummy_weights(7);
  auto q1 = a->load_f32("model.layers.0.self_attn.q_proj.weight", shape);
  (void)b->load_f32("model.layers.1.mlp.up_proj.weight", shape);  // another tensor first
  auto q2 = b->load_f32("model.layers.0.self_attn.q_proj.weight", shape);
  EXPECT_EQ(q1, q2);
  auto k = a->load_f32("model.layers.0.self_attn.k_proj.weight", shape);
  EXPECT_NE(q1, k);
  auto other_seed = make_dummy_weights(8)->load_f32("model.layers.0.self_attn.q_proj.weight", shape);
  EXPECT_NE(q1, other_seed);
  int differ = 0;
  for (size_t i = 0; i < q1.size(); ++i) differ += q1[i] != other_seed[i];
  EXPECT_GT(differ, int(q1.size()) * 9 / 10);
}

TEST(DummyWeights, RangesByKind) {
  auto w = make_dummy_weights(3);
  const std::vector<int64_t> mat{300, 144};
  auto m = w->load_f32("model.layers.2.mlp.gate_proj.weight", mat);
  const double a = 1.0 / 12.0;
  double sum = 0, sum2 = 0, max_abs = 0;
  for (float x : m) {
    ASSERT_LT(std::abs(x), a + 1e-6);
    sum += x;
    sum2 += double(x) * x;
    max_abs = std::max(max_abs, double(std::abs(x)));
  }
  const double n = double(m.size());
  EXPECT_NEAR(sum / n, 0.0, 0.01 * a * 10);
  EXPECT_NEAR(sum2 / n, a * a / 3, 0.05 * a * a / 3);  // variance of uniform(-a, a)
  EXPECT_GT(max_abs, 0.99 * a);
  for (float x : w->load_f32("model.layers.0.input_layernorm.weight", std::vector<int64_t>{97})) {
    EXPECT_GE(x, 0.949f);
    EXPECT_LE(x, 1.051f);
  }
  for (float x : w->load_f32("model.layers.0.self_attn.q_proj.bias", std::vector<int64_t>{97})) {
    EXPECT_LE(std::abs(x), 0.0201f);
  }
}

TEST(DummyWeights, ConfigAwareContains) {
  ModelConfig c = *preset_config("qwen3-tiny");
  auto w = make_dummy_weights(1, c);
  for (const auto& s : model_tensor_specs(c)) EXPECT_TRUE(w->contains(s.name)) << s.name;
  EXPECT_TRUE(w->contains("model.layers.3.self_attn.q_norm.weight"));
  EXPECT_FALSE(w->contains("lm_head.weight"));  // tied
  EXPECT_FALSE(w->contains("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE(w->contains("model.layers.4.mlp.up_proj.weight"));  // 4 layers
  EXPECT_THROW(w->load_f32("lm_head.weight", std::vector<int64_t>{1, 1}), Error);
}

TEST(DummyWeights, RoundedToTheModelDtypeAsItsCheckpointWouldBe) {
  const std::string name = "model.layers.1.mlp.down_proj.weight";
  const std::vector<int64_t> shape{256, 768};  // qwen3-tiny's [H, I]
  const std::vector<float> raw = make_dummy_weights(9)->load_f32(name, shape);
  ModelConfig bf16 = *preset_config("qwen3-tiny");
  ASSERT_EQ(bf16.torch_dtype, DType::BF16);
  const std::vector<float> rounded = make_dummy_weights(9, bf16)->load_f32(name, shape);
  int changed = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    ASSERT_EQ(rounded[i], round_to_dtype(DType::BF16, raw[i])) << i;
    changed += rounded[i] != raw[i];
  }
  EXPECT_GT(changed, int(raw.size()) / 2);  // the raw values are not BF16 already
  ModelConfig f32 = bf16;
  f32.torch_dtype = DType::F32;
  EXPECT_EQ(make_dummy_weights(9, f32)->load_f32(name, shape), raw);
}

TEST(DummyWeights, FillsQwen3_0_6bQuickly) {
  ModelConfig c = *preset_config("qwen3-0.6b");
  auto w = make_dummy_weights(0, c);
  auto start = std::chrono::steady_clock::now();
  int64_t total = 0;
  double checksum = 0;
  for (const auto& s : model_tensor_specs(c)) {
    auto v = w->load_f32(s.name, s.shape);
    total += int64_t(v.size());
    checksum += v[v.size() / 2];
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(total, 596049920);  // Qwen3-0.6B's parameter count (tied head)
  EXPECT_TRUE(std::isfinite(checksum));
  EXPECT_LT(seconds, 60.0);
  std::printf("filled %lld floats in %.2f s\n", (long long)total, seconds);
}

}  // namespace
}  // namespace nanovllm
