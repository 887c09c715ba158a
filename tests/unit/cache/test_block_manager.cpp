#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "cache/block_manager.h"
#include "core/error.h"

namespace nanovllm {
namespace {

constexpr int32_t kBlock = 4;

std::vector<int32_t> random_tokens(int32_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(1, 150000);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (auto& t : out) t = dist(gen);
  return out;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Allocates and marks every token computed, as a finished prefill would.
std::vector<int32_t> allocate_computed(BlockManager& bm, const std::vector<int32_t>& tokens,
                                       int32_t* cached = nullptr) {
  std::vector<int32_t> table;
  int32_t c = bm.allocate(tokens, table);
  if (cached) *cached = c;
  bm.register_computed(tokens, int32_t(tokens.size()), table);
  return table;
}

TEST(BlockManager, AllocateAndFreeCountsBlocksAndRefs) {
  BlockManager bm(8, kBlock, /*enable_prefix_caching=*/false);
  EXPECT_EQ(bm.num_free_blocks(), 8);
  auto tokens = random_tokens(10, 1);  // 3 blocks, the last one partial
  std::vector<int32_t> table;
  EXPECT_EQ(bm.allocate(tokens, table), 0);
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(std::set<int32_t>(table.begin(), table.end()).size(), 3u);
  for (int32_t id : table) EXPECT_EQ(bm.ref_count(id), 1);
  EXPECT_EQ(bm.num_free_blocks(), 5);

  EXPECT_TRUE(bm.can_allocate(random_tokens(20, 2)));   // 5 blocks
  EXPECT_FALSE(bm.can_allocate(random_tokens(21, 3)));  // 6 blocks
  std::vector<int32_t> other;
  EXPECT_THROW(bm.allocate(random_tokens(21, 3), other), Error);
  EXPECT_TRUE(other.empty());
  EXPECT_THROW(bm.allocate(tokens, table), Error);  // table not empty

  const std::vector<int32_t> old = table;
  bm.deallocate(table);
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(bm.num_free_blocks(), 8);
  for (int32_t id : old) EXPECT_EQ(bm.ref_count(id), 0);
}

TEST(BlockManager, AppendGrowsTableAtBlockBoundary) {
  BlockManager bm(3, kBlock);
  auto tokens = random_tokens(8, 4);
  std::vector<int32_t> table;
  bm.allocate(tokens, table);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_TRUE(bm.can_append(8, table));
  bm.may_append(8, table);  // still fits
  EXPECT_EQ(table.size(), 2u);
  bm.may_append(9, table);  // token 9 opens block 3
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  EXPECT_TRUE(bm.can_append(12, table));
  EXPECT_FALSE(bm.can_append(13, table));
  EXPECT_THROW(bm.may_append(13, table), Error);
}

TEST(BlockManager, ResetPrefixCacheForgetsPrefixesOnlyWhenIdle) {
  BlockManager bm(16, kBlock);
  const auto tokens = random_tokens(11, 21);  // 2 full blocks + 3 tokens
  auto a = allocate_computed(bm, tokens);
  EXPECT_FALSE(bm.reset_prefix_cache()) << "blocks in use: nothing may be forgotten";
  bm.deallocate(a);

  // Still cached after the refused reset: the same prompt reuses both full blocks.
  std::vector<int32_t> b;
  EXPECT_EQ(bm.allocate(tokens, b), 8);
  bm.deallocate(b);

  EXPECT_TRUE(bm.reset_prefix_cache());
  EXPECT_EQ(bm.num_free_blocks(), 16);
  std::vector<int32_t> c;
  EXPECT_EQ(bm.allocate(tokens, c), 0) << "after the reset every token is computed again";
  bm.deallocate(c);
}

TEST(BlockManager, SharedPrefixHitsAndSharesBlocks) {
  BlockManager bm(16, kBlock);
  auto prefix = random_tokens(8, 5);
  auto a_tokens = concat(prefix, random_tokens(3, 6));  // 2 full blocks + 3 tokens
  auto a = allocate_computed(bm, a_tokens);

  int32_t cached = -1;
  auto b_tokens = concat(prefix, random_tokens(5, 7));
  std::vector<int32_t> b;
  cached = bm.allocate(b_tokens, b);
  EXPECT_EQ(cached, 8);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(b[1], a[1]);
  EXPECT_NE(b[2], a[2]);
  EXPECT_EQ(bm.ref_count(a[0]), 2);
  EXPECT_EQ(bm.ref_count(a[1]), 2);
  EXPECT_EQ(bm.ref_count(a[2]), 1);
  EXPECT_EQ(bm.num_free_blocks(), 16 - 3 - 2);
  EXPECT_EQ(bm.hit_tokens(), 8);
  EXPECT_EQ(bm.miss_tokens(), 11 + 5);

  // Freeing one holder keeps shared blocks in use.
  bm.deallocate(a);
  EXPECT_EQ(bm.ref_count(b[0]), 1);
  EXPECT_EQ(bm.num_free_blocks(), 16 - 4);
  bm.deallocate(b);
  EXPECT_EQ(bm.num_free_blocks(), 16);
}

TEST(BlockManager, DifferentPrefixMissesEvenWithEqualLaterBlocks) {
  BlockManager bm(16, kBlock);
  auto block0 = random_tokens(4, 8), block1 = random_tokens(4, 9);
  allocate_computed(bm, concat(concat(block0, block1), random_tokens(1, 10)));
  // Same second block after another first block: the chained hash differs.
  std::vector<int32_t> t;
  auto other0 = block0;
  other0[3] += 1;
  EXPECT_EQ(bm.allocate(concat(concat(other0, block1), random_tokens(1, 11)), t), 0);
  // First block equal, second differs in one token: only the first hits.
  std::vector<int32_t> u;
  auto other1 = block1;
  other1[0] += 1;
  EXPECT_EQ(bm.allocate(concat(concat(block0, other1), random_tokens(1, 12)), u), 4);
}

TEST(BlockManager, PartialLastBlockIsNeverCached) {
  BlockManager bm(16, kBlock);
  auto a_tokens = random_tokens(10, 13);  // blocks: 4 + 4 + 2
  allocate_computed(bm, a_tokens);
  std::vector<int32_t> t;
  // The same 10 tokens plus more: the 2-token block was never hashed.
  EXPECT_EQ(bm.allocate(concat(a_tokens, random_tokens(2, 14)), t), 8);
}

TEST(BlockManager, WholePromptHitLeavesLastBlockToCompute) {
  BlockManager bm(16, kBlock);
  auto tokens = random_tokens(12, 15);  // exactly 3 full blocks
  auto a = allocate_computed(bm, tokens);
  std::vector<int32_t> b;
  EXPECT_EQ(bm.allocate(tokens, b), 8);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(b[1], a[1]);
  EXPECT_NE(b[2], a[2]);  // a private block: the last token is written there, not in a's
  EXPECT_EQ(bm.ref_count(a[2]), 1);
  // One block prompt fully cached: nothing comes from the cache.
  BlockManager one(4, kBlock);
  auto single = random_tokens(4, 16);
  allocate_computed(one, single);
  std::vector<int32_t> c;
  EXPECT_EQ(one.allocate(single, c), 0);
}

TEST(BlockManager, HitAfterOriginalFinished) {
  BlockManager bm(6, kBlock);
  auto tokens = random_tokens(9, 17);
  auto a = allocate_computed(bm, tokens);
  const std::vector<int32_t> old = a;
  bm.deallocate(a);
  EXPECT_EQ(bm.num_free_blocks(), 6);
  std::vector<int32_t> b;
  ASSERT_TRUE(bm.can_allocate(tokens));
  EXPECT_EQ(bm.allocate(tokens, b), 8);
  EXPECT_EQ(b[0], old[0]);
  EXPECT_EQ(b[1], old[1]);
  EXPECT_EQ(bm.ref_count(old[0]), 1);
  EXPECT_EQ(bm.num_free_blocks(), 3);  // cached free blocks still leave the free list
}

TEST(BlockManager, CanAllocateCountsFreeCachedBlocksAsNeeded) {
  BlockManager bm(3, kBlock);
  auto prefix = random_tokens(8, 18);
  auto longer = concat(prefix, random_tokens(4, 19));  // 3 blocks, the first 2 cacheable
  auto a = allocate_computed(bm, prefix);
  // Hits on blocks in use cost nothing: 1 free block is enough for the third.
  EXPECT_EQ(bm.num_free_blocks(), 1);
  EXPECT_TRUE(bm.can_allocate(longer));
  bm.deallocate(a);
  std::vector<int32_t> x;
  bm.allocate(random_tokens(2, 30), x);  // takes the never-hashed block
  // Now both cached blocks are free: taking them uses 2 of the 2 free, none left for the third.
  EXPECT_EQ(bm.num_free_blocks(), 2);
  EXPECT_FALSE(bm.can_allocate(longer));
  bm.deallocate(x);
  EXPECT_TRUE(bm.can_allocate(longer));
  std::vector<int32_t> b;
  EXPECT_EQ(bm.allocate(longer, b), 8);
  EXPECT_EQ(bm.num_free_blocks(), 0);
}

TEST(BlockManager, ReusingAFreedBlockEvictsItsStaleHash) {
  BlockManager bm(4, kBlock);
  auto tokens = random_tokens(8, 20);
  auto a = allocate_computed(bm, tokens);
  const std::vector<int32_t> old = a;
  bm.deallocate(a);  // free list: the 2 never-used blocks, then old[1], then old[0]
  // A fresh 3-block sequence takes the 2 unused blocks and then old[1] (tail freed first).
  std::vector<int32_t> x;
  EXPECT_EQ(bm.allocate(random_tokens(12, 21), x), 0);
  EXPECT_EQ(x[2], old[1]);
  bm.deallocate(x);
  // old[0] still hits; old[1] was rewritten, its hash must be gone.
  std::vector<int32_t> b;
  EXPECT_EQ(bm.allocate(concat(tokens, random_tokens(1, 22)), b), 4);
  EXPECT_EQ(b[0], old[0]);
}

TEST(BlockManager, HashCollisionIsRejectedByTokenComparison) {
  // Every block at position i hashes to i + 1, whatever its tokens.
  BlockManager bm(16, kBlock, true, [](uint64_t prev, std::span<const int32_t>) { return prev + 1; });
  auto tokens = random_tokens(9, 23);
  allocate_computed(bm, tokens);
  std::vector<int32_t> b;
  EXPECT_EQ(bm.allocate(random_tokens(9, 24), b), 0);  // same hashes, other tokens
  std::vector<int32_t> c;
  auto half = tokens;
  half[5] ^= 1;  // second block differs
  EXPECT_EQ(bm.allocate(half, c), 4);
  std::vector<int32_t> d;
  EXPECT_EQ(bm.allocate(tokens, d), 8);
}

TEST(BlockManager, PrefixCachingOffNeverHits) {
  BlockManager bm(16, kBlock, /*enable_prefix_caching=*/false);
  auto tokens = random_tokens(9, 25);
  allocate_computed(bm, tokens);
  std::vector<int32_t> b;
  EXPECT_EQ(bm.allocate(tokens, b), 0);
  EXPECT_EQ(bm.hit_tokens(), 0);
  EXPECT_EQ(bm.miss_tokens(), 18);
  EXPECT_DOUBLE_EQ(bm.hit_rate(), 0.0);
}

TEST(BlockManager, DecodeRegistersBlockWhenItFillsAndIsComputed) {
  BlockManager bm(16, kBlock);
  auto tokens = random_tokens(3, 26);
  std::vector<int32_t> table;
  bm.allocate(tokens, table);
  bm.register_computed(tokens, 3, table);
  // Decode: token 4 arrives (sampled), its K/V computed next step.
  tokens.push_back(777);
  bm.may_append(4, table);
  std::vector<int32_t> probe;
  EXPECT_EQ(bm.allocate(concat(tokens, {5}), probe), 0);  // block not computed yet: no hit
  bm.deallocate(probe);
  bm.register_computed(tokens, 4, table);
  std::vector<int32_t> probe2;
  EXPECT_EQ(bm.allocate(concat(tokens, {5}), probe2), 4);
  EXPECT_EQ(probe2[0], table[0]);
  // Chunked: only blocks whose every token is computed are registered.
  auto long_tokens = random_tokens(12, 27);
  std::vector<int32_t> lt;
  bm.allocate(long_tokens, lt);
  bm.register_computed(long_tokens, 7, lt);  // block 0 full, block 1 has 3 of 4 computed
  std::vector<int32_t> probe3;
  EXPECT_EQ(bm.allocate(concat(long_tokens, {1}), probe3), 4);
  EXPECT_DOUBLE_EQ(bm.hit_rate(), double(bm.hit_tokens()) / double(bm.hit_tokens() + bm.miss_tokens()));
}

TEST(BlockManager, RejectsBadConstructionAndIds) {
  EXPECT_THROW(BlockManager(0, 4), Error);
  EXPECT_THROW(BlockManager(4, 0), Error);
  BlockManager bm(4, kBlock);
  EXPECT_THROW(bm.ref_count(4), Error);
  std::vector<int32_t> bogus{7};
  EXPECT_THROW(bm.deallocate(bogus), Error);
  std::vector<int32_t> never{1};
  EXPECT_THROW(bm.deallocate(never), Error);  // block 1 was never taken
}

}  // namespace
}  // namespace nanovllm
