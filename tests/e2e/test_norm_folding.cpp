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
#include "model/decoder_model.h"
#include "model/model_source.h"

namespace nanovllm {
namespace {

// The CPU backend, asking the model to fold (its blocks then run with a unit norm weight).
class FoldingCpuBackend final : public CpuBackend {
 public:
  bool folds_norm_weights(DType) const override { return true; }
};

// One sequence on one backend: a block-paged F32 cache and the model over it.
class SequenceRun {
 public:
  static constexpr int32_t kBlockSize = 4, kBlocks = 16;

  SequenceRun(const LoadedModel& m, Backend& backend) : c_(m.config) {
    model_ = std::make_unique<DecoderModel>(c_, backend, *m.weights, 32, 32, KvDType::F32);
    const size_t per_layer = size_t(kBlocks) * kBlockSize * c_.num_key_value_heads * c_.head_dim;
    for (int32_t l = 0; l < c_.num_hidden_layers; ++l) {
      k_.emplace_back(per_layer, 0.f);
      v_.emplace_back(per_layer, 0.f);
      layers_.push_back({k_.back().data(), v_.back().data(), nullptr, nullptr, KvDType::F32,
                         kBlocks, kBlockSize, c_.num_key_value_heads, c_.head_dim});
    }
    // Blocks of the sequence in a shuffled order, so the paging is exercised.
    for (int32_t b = 0; b < kBlocks; ++b) block_table_.push_back((b * 7 + 3) % kBlocks);
  }

  int64_t weight_bytes() const { return model_->weight_bytes(); }

  // Appends `ids` to the sequence and returns the logits of every new position, [T, V].
  std::vector<float> step(const std::vector<int32_t>& ids) {
    const int32_t T = int32_t(ids.size()), start = length_;
    std::vector<int32_t> positions(static_cast<size_t>(T));
    std::vector<int64_t> slots(static_cast<size_t>(T));
    for (int32_t t = 0; t < T; ++t) {
      positions[size_t(t)] = start + t;
      slots[size_t(t)] = int64_t(block_table_[size_t((start + t) / kBlockSize)]) * kBlockSize +
                         (start + t) % kBlockSize;
    }
    length_ += T;
    std::vector<int32_t> cu = {0, T}, ctx = {length_};
    StepTensors s;
    std::vector<int32_t> tokens = ids;
    s.token_ids = Tensor(tokens.data(), DType::I32, Device::CPU, {T});
    s.positions = Tensor(positions.data(), DType::I32, Device::CPU, {T});
    s.slot_mapping = Tensor(slots.data(), DType::I64, Device::CPU, {T});
    s.attention.cu_seqlens_q = cu.data();
    s.attention.context_lens = ctx.data();
    s.attention.block_tables = block_table_.data();
    s.attention.num_seqs = 1;
    s.attention.max_blocks_per_seq = kBlocks;
    s.attention.max_query_len = T;
    s.attention.max_context_len = length_;
    Tensor hidden = model_->forward(s, layers_);
    std::vector<int32_t> rows(static_cast<size_t>(T));
    for (int32_t t = 0; t < T; ++t) rows[size_t(t)] = t;
    Tensor logits = model_->logits(hidden, Tensor(rows.data(), DType::I32, Device::CPU, {T}));
    const float* p = logits.ptr<float>();
    return std::vector<float>(p, p + size_t(T) * c_.vocab_size);
  }

 private:
  ModelConfig c_;
  std::unique_ptr<DecoderModel> model_;
  std::vector<std::vector<float>> k_, v_;
  std::vector<PagedKvLayer> layers_;
  std::vector<int32_t> block_table_;
  int32_t length_ = 0;
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
