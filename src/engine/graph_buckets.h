#pragma once
// The batch sizes decode steps are captured at as CUDA graphs, and the bucket a batch pads to.
#include <cstdint>
#include <vector>

namespace nanovllm {

// nano-vllm's decode graph sizes: 1, 2, 4, 8, then every 16 up to max_num_seqs (and 512).
std::vector<int32_t> decode_graph_sizes(int32_t max_num_seqs);

// The smallest of `sizes` (ascending) that holds num_seqs rows; 0 when none does.
int32_t graph_bucket(const std::vector<int32_t>& sizes, int32_t num_seqs);

}  // namespace nanovllm
