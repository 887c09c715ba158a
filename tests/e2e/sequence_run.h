#pragma once
// One sequence through a DecoderModel on one backend, step by step: a block-paged F32 cache (its
// blocks in a shuffled order) and the model's logits for every new position, for end-to-end
// checks that compare two ways of building or running the same model.
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/decoder_model.h"
#include "model/model_source.h"

namespace nanovllm {

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

}  // namespace nanovllm
