// decode_graph_sizes / graph_bucket: the batch sizes decode steps are captured at (nano-vllm's
// 1, 2, 4, 8, then every 16) and the bucket a decode batch pads to.
#include <gtest/gtest.h>

#include <vector>

#include "engine/graph_buckets.h"

namespace nanovllm {
namespace {

TEST(GraphBuckets, NanoVllmSizesUpToTheBatchLimit) {
  EXPECT_EQ(decode_graph_sizes(40), (std::vector<int32_t>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(decode_graph_sizes(3), (std::vector<int32_t>{1, 2}));
  const std::vector<int32_t> big = decode_graph_sizes(4096);
  EXPECT_EQ(big.back(), 512);  // capped
  EXPECT_EQ(big.size(), 4u + 32u);
}

TEST(GraphBuckets, SmallestSizeThatHoldsTheBatch) {
  const std::vector<int32_t> sizes = decode_graph_sizes(256);
  EXPECT_EQ(graph_bucket(sizes, 1), 1);
  EXPECT_EQ(graph_bucket(sizes, 3), 4);
  EXPECT_EQ(graph_bucket(sizes, 8), 8);
  EXPECT_EQ(graph_bucket(sizes, 9), 16);
  EXPECT_EQ(graph_bucket(sizes, 131), 144);
  EXPECT_EQ(graph_bucket(sizes, 256), 256);
  EXPECT_EQ(graph_bucket(sizes, 257), 0);  // larger than every graph: eager
  EXPECT_EQ(graph_bucket({}, 1), 0);       // no graphs (eager mode)
}

}  // namespace
}  // namespace nanovllm
