#include "engine/batch_builder.h"

#include <algorithm>

#include "core/error.h"

namespace nanovllm {

BatchInput build_batch_input(const ScheduledBatch& batch, int32_t block_size,
                             int32_t block_table_width) {
  BatchInput in;
  in.max_blocks_per_seq = block_table_width;
  in.cu_seqlens_q.push_back(0);
  for (const ScheduledSeq& s : batch.seqs) {
    const Sequence& seq = *s.seq;
    const int32_t start = seq.num_computed_tokens;
    const int32_t end = start + s.num_new_tokens;
    NANOVLLM_CHECK(end <= seq.num_tokens(), "batch: sequence ", seq.id, " schedules tokens up to ",
                   end, " of ", seq.num_tokens());
    NANOVLLM_CHECK(int32_t(seq.block_table.size()) * block_size >= end, "batch: sequence ", seq.id,
                   " has ", seq.block_table.size(), " blocks for ", end, " tokens");
    NANOVLLM_CHECK(int32_t(seq.block_table.size()) <= block_table_width, "batch: sequence ", seq.id,
                   " needs ", seq.block_table.size(), " blocks; the table holds ",
                   block_table_width);
    for (int32_t t = start; t < end; ++t) {
      in.token_ids.push_back(seq.token_ids[t]);
      in.positions.push_back(t);
      in.slot_mapping.push_back(int64_t(seq.block_table[t / block_size]) * block_size +
                                t % block_size);
    }
    in.cu_seqlens_q.push_back(in.cu_seqlens_q.back() + s.num_new_tokens);
    in.context_lens.push_back(end);
    const size_t row = in.block_tables.size();
    in.block_tables.resize(row + block_table_width, -1);
    std::copy(seq.block_table.begin(), seq.block_table.end(), in.block_tables.begin() + row);
    if (s.samples) in.logits_indices.push_back(in.cu_seqlens_q.back() - 1);
    in.max_query_len = std::max(in.max_query_len, s.num_new_tokens);
    in.max_context_len = std::max(in.max_context_len, end);
  }
  const auto shortest = std::min_element(in.context_lens.begin(), in.context_lens.end());
  in.even_contexts = shortest != in.context_lens.end() &&
                     int64_t(*shortest) * 5 >= int64_t(in.max_context_len) * 4;
  return in;
}

void pad_decode_batch(BatchInput& in, int32_t num_seqs) {
  const int32_t width = in.max_blocks_per_seq;
  for (int32_t i = in.num_seqs(); i < num_seqs; ++i) {
    in.token_ids.push_back(0);
    in.positions.push_back(0);
    in.slot_mapping.push_back(-1);
    in.cu_seqlens_q.push_back(in.cu_seqlens_q.back() + 1);
    in.context_lens.push_back(1);
    in.block_tables.push_back(0);
    in.block_tables.resize(in.block_tables.size() + width - 1, -1);
    in.logits_indices.push_back(in.cu_seqlens_q.back() - 1);
  }
  in.max_query_len = 1;
}

}  // namespace nanovllm
