// A BF16 checkpoint on the CPU (CpuBackend::weight_dtype): the model keeps its matrices in BF16
// (half the bytes a decode step reads) and computes the logits it computes with the same values
// stored as F32; matrices BF16 cannot hold exactly (an F32 or dequantized GGUF checkpoint) stay
// F32. A quantized KV cache's V rotation, folded into v_proj and o_proj, is rounded back to BF16
// for a BF16 checkpoint (as a BF16 backend stores every matrix). stories260K's weights, rounded
// to BF16 by a wrapping source, stand in for a BF16 checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/half.h"
#include "e2e_util.h"
#include "model/decoder_model.h"
#include "model/kv_rotation_plan.h"
#include "model/model_source.h"
#include "sequence_run.h"

namespace nanovllm {
namespace {

// The tensors of `inner` (not owned), rounded to BF16 as a BF16 checkpoint stores them when
// `round` is set.
class SharedWeights final : public WeightSource {
 public:
  SharedWeights(const WeightSource& inner, bool round) : inner_(inner), round_(round) {}
  bool contains(const std::string& name) const override { return inner_.contains(name); }
  std::vector<float> load_f32(const std::string& name,
                              std::span<const int64_t> shape) const override {
    std::vector<float> v = inner_.load_f32(name, shape);
    if (round_)
      for (float& x : v) x = round_to_dtype(DType::BF16, x);
    return v;
  }
  std::string describe() const override { return inner_.describe(); }

 private:
  const WeightSource& inner_;
  bool round_;
};

// Elements of the matrices DecoderModel stores in the weight dtype.
int64_t matrix_elements(const ModelConfig& c, const WeightSource& w) {
  const int64_t H = c.hidden_size, D = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const bool tied = c.tie_word_embeddings && !w.contains("lm_head.weight");
  const int64_t per_layer = (Hq + 2 * Hkv) * D * H + H * Hq * D + 2 * I * H + H * I;
  return V * H * (tied ? 1 : 2) + c.num_hidden_layers * per_layer;
}

TEST(CpuBf16Weights, Bf16CheckpointKeepsItsMatricesInBf16) {
  const LoadedModel m = open_model(e2e::stories_dir().string(), "", "auto", 0);
  ASSERT_EQ(m.config.torch_dtype, DType::F32);
  LoadedModel f32_model{m.config, std::make_unique<SharedWeights>(*m.weights, true), {}};
  ModelConfig bf16_config = m.config;
  bf16_config.torch_dtype = DType::BF16;
  LoadedModel bf16_model{bf16_config, std::make_unique<SharedWeights>(*m.weights, true), {}};
  // The F32 values themselves are not BF16-exact.
  LoadedModel inexact_bf16_model{bf16_config, std::make_unique<SharedWeights>(*m.weights, false), {}};

  CpuBackend backend;
  SequenceRun a(f32_model, backend), b(bf16_model, backend), c(inexact_bf16_model, backend);
  EXPECT_EQ(a.weight_bytes() - b.weight_bytes(), 2 * matrix_elements(m.config, *m.weights));
  EXPECT_EQ(c.weight_bytes(), a.weight_bytes());  // not exact in BF16: kept in F32

  const int32_t V = m.config.vocab_size;
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 9; ++i) prompt.push_back(1 + (i * 37 + 11) % (V - 1));
  const std::vector<std::vector<int32_t>> steps = {prompt, {5}, {V - 1}, {2}};
  for (size_t s = 0; s < steps.size(); ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    const std::vector<float> want = a.step(steps[s]), got = b.step(steps[s]);
    ASSERT_EQ(got.size(), want.size());
    double err = 0, scale = 1;
    for (size_t i = 0; i < got.size(); ++i) {
      err = std::max(err, double(std::fabs(got[i] - want[i])));
      scale = std::max(scale, double(std::fabs(want[i])));
    }
    // The same values in F32 arithmetic: the two differ by the order of float roundings only.
    EXPECT_LT(err, 1e-4 * scale);
  }
}

TEST(CpuBf16Weights, RotatedMatricesOfABf16CheckpointStayBf16) {
  const LoadedModel m = open_model(e2e::stories_dir().string(), "", "auto", 0);
  ModelConfig bf16_config = m.config;
  bf16_config.torch_dtype = DType::BF16;
  LoadedModel bf16_model{bf16_config, std::make_unique<SharedWeights>(*m.weights, true), {}};
  LoadedModel inexact_bf16_model{bf16_config, std::make_unique<SharedWeights>(*m.weights, false), {}};
  ASSERT_TRUE(kv_rotation_plan(KvDType::INT8, m.config.head_dim).rotate_v);

  CpuBackend backend;
  auto bytes = [&](const LoadedModel& lm, KvDType kv) {
    return DecoderModel(lm.config, backend, *lm.weights, 32, 32, kv).weight_bytes();
  };
  // An INT8 cache rotates V into v_proj / o_proj: no more weight bytes than a 16-bit cache.
  EXPECT_EQ(bytes(bf16_model, KvDType::INT8), bytes(bf16_model, KvDType::BF16));
  EXPECT_EQ(bytes(bf16_model, KvDType::INT4), bytes(bf16_model, KvDType::BF16));
  // Values BF16 cannot hold stay F32, rotated or not.
  EXPECT_EQ(bytes(inexact_bf16_model, KvDType::INT8), bytes(inexact_bf16_model, KvDType::BF16));
  EXPECT_EQ(bytes(inexact_bf16_model, KvDType::INT8) - bytes(bf16_model, KvDType::INT8),
            2 * matrix_elements(m.config, *m.weights));
}

}  // namespace
}  // namespace nanovllm
