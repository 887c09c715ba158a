#include "engine/graph_buckets.h"

#include <algorithm>

namespace nanovllm {

std::vector<int32_t> decode_graph_sizes(int32_t max_num_seqs) {
  std::vector<int32_t> sizes;
  for (int32_t s : {1, 2, 4, 8})
    if (s <= max_num_seqs) sizes.push_back(s);
  for (int32_t s = 16; s <= std::min(max_num_seqs, 512); s += 16) sizes.push_back(s);
  return sizes;
}

int32_t graph_bucket(const std::vector<int32_t>& sizes, int32_t num_seqs) {
  for (int32_t s : sizes)
    if (s >= num_seqs) return s;
  return 0;
}

}  // namespace nanovllm
