// The model's RMSNorm folding (Backend::folds_norm_weights): with each input / post-attention
// norm weight folded into the columns of the product after it, a model computes the logits it
// computes unfolded. Checked on real checkpoints (stories260K: Llama; the transformers fixtures:
// Qwen3 with q/k norms, Qwen2 with a qkv bias) through the CPU backend, prefill then decode
// steps over a paged F32 cache, against the same model unfolded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "e2e_util.h"
#include "model/model_source.h"
#include "sequence_run.h"

namespace nanovllm {
namespace {

// The CPU backend, asking the model to fold (its blocks then run with a unit norm weight).
class FoldingCpuBackend final : public CpuBackend {
 public:
  bool folds_norm_weights(DType) const override { return true; }
};

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

void expect_folded_equals_unfolded(const std::string& model_dir) {
  SCOPED_TRACE(model_dir);
  const LoadedModel m = open_model(model_dir, "", "auto", 0);
  CpuBackend plain;
  FoldingCpuBackend folding;
  SequenceRun a(m, plain), b(m, folding);
  // The folded model keeps no norm weights of its layers: 2 x layers x H floats fewer.
  EXPECT_EQ(a.weight_bytes() - b.weight_bytes(),
            int64_t(2) * m.config.num_hidden_layers * m.config.hidden_size * 4);
  const int32_t V = m.config.vocab_size;
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 9; ++i) prompt.push_back(1 + (i * 37 + 11) % (V - 1));
  std::vector<std::vector<int32_t>> steps = {prompt, {5}, {V - 1}, {2}};
  for (size_t s = 0; s < steps.size(); ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    const std::vector<float> want = a.step(steps[s]), got = b.step(steps[s]);
    ASSERT_EQ(got.size(), want.size());
    double err = 0;
    for (size_t i = 0; i < got.size(); ++i) err = std::max(err, double(std::fabs(got[i] - want[i])));
    // F32 throughout: the two differ by the order of float roundings only.
    EXPECT_LT(err, 1e-4 * std::max(1.0, max_abs(want)));
  }
}

TEST(NormFolding, Stories260KLogitsUnchanged) {
  expect_folded_equals_unfolded(e2e::stories_dir().string());
}

TEST(NormFolding, QwenFixturesLogitsUnchanged) {
  for (const char* name : {"qwen3_tiny", "qwen2_tiny"})
    expect_folded_equals_unfolded(std::string(NANOVLLM_SOURCE_DIR) + "/tests/fixtures/" + name);
}

}  // namespace
}  // namespace nanovllm
