#include "cache/block_manager.h"

#include <algorithm>
#include <iterator>

#include <xxhash.h>

#include "core/error.h"

namespace nanovllm {

uint64_t BlockManager::default_hash(uint64_t prev_hash, std::span<const int32_t> token_ids) {
  return XXH3_64bits_withSeed(token_ids.data(), token_ids.size_bytes(), prev_hash);
}

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                           Hasher hasher)
    : block_size_(block_size),
      enable_prefix_caching_(enable_prefix_caching),
      hasher_(hasher ? std::move(hasher) : Hasher(&BlockManager::default_hash)) {
  NANOVLLM_CHECK(num_blocks > 0, "BlockManager: num_blocks is ", num_blocks, ", expected > 0");
  NANOVLLM_CHECK(block_size > 0, "BlockManager: block_size is ", block_size, ", expected > 0");
  blocks_.resize(size_t(num_blocks));
  for (int32_t id = 0; id < num_blocks; ++id) {
    free_.push_back(id);
    blocks_[size_t(id)].free_pos = std::prev(free_.end());
  }
}

int32_t BlockManager::ref_count(int32_t block_id) const {
  NANOVLLM_CHECK(block_id >= 0 && block_id < num_blocks(), "BlockManager: block id ", block_id,
                 " out of range [0, ", num_blocks(), ")");
  return blocks_[size_t(block_id)].ref_count;
}

int32_t BlockManager::blocks_for(int64_t num_tokens) const {
  return int32_t((num_tokens + block_size_ - 1) / block_size_);
}

double BlockManager::hit_rate() const {
  const int64_t total = hit_tokens_ + miss_tokens_;
  return total == 0 ? 0.0 : double(hit_tokens_) / double(total);
}

std::vector<int32_t> BlockManager::match_prefix(std::span<const int32_t> token_ids,
                                                bool use_prefix_cache) const {
  std::vector<int32_t> hits;
  if (!enable_prefix_caching_ || !use_prefix_cache) return hits;
  const size_t num_full = token_ids.size() / size_t(block_size_);
  uint64_t prev_hash = 0;
  for (size_t i = 0; i < num_full; ++i) {
    auto tokens = token_ids.subspan(i * size_t(block_size_), size_t(block_size_));
    const uint64_t hash = hasher_(prev_hash, tokens);
    auto found = hash_to_block_.find(hash);
    if (found == hash_to_block_.end()) break;
    const Block& block = blocks_[size_t(found->second)];
    if (!std::equal(tokens.begin(), tokens.end(), block.token_ids.begin(), block.token_ids.end()))
      break;  // a hash collision: same hash, other tokens
    hits.push_back(found->second);
    prev_hash = hash;
  }
  // Keep at least one token to compute, so the last block is never a shared one being written.
  if (!hits.empty() && hits.size() * size_t(block_size_) == token_ids.size()) hits.pop_back();
  return hits;
}

bool BlockManager::can_allocate(std::span<const int32_t> token_ids, bool use_prefix_cache) const {
  const std::vector<int32_t> hits = match_prefix(token_ids, use_prefix_cache);
  int64_t needed = blocks_for(int64_t(token_ids.size())) - int64_t(hits.size());
  for (int32_t id : hits)
    if (blocks_[size_t(id)].ref_count == 0) ++needed;  // a free cached block still leaves the free list
  return needed <= int64_t(free_.size());
}

void BlockManager::forget_hash(int32_t block_id) {
  Block& block = blocks_[size_t(block_id)];
  if (!block.has_hash) return;
  auto found = hash_to_block_.find(block.hash);
  if (found != hash_to_block_.end() && found->second == block_id) hash_to_block_.erase(found);
  block.has_hash = false;
  block.token_ids.clear();
}

bool BlockManager::reset_prefix_cache() {
  if (num_free_blocks() != num_blocks()) return false;
  for (int32_t id = 0; id < num_blocks(); ++id) forget_hash(id);
  return true;
}

void BlockManager::take(int32_t block_id, bool keep_hash) {
  Block& block = blocks_[size_t(block_id)];
  free_.erase(block.free_pos);
  if (!keep_hash) forget_hash(block_id);
}

void BlockManager::release(int32_t block_id) {
  Block& block = blocks_[size_t(block_id)];
  NANOVLLM_CHECK(block.ref_count > 0, "BlockManager: block ", block_id, " freed more often than taken");
  if (--block.ref_count == 0) {
    free_.push_back(block_id);
    block.free_pos = std::prev(free_.end());
  }
}

int32_t BlockManager::allocate(std::span<const int32_t> token_ids, std::vector<int32_t>& block_table,
                               bool use_prefix_cache) {
  NANOVLLM_CHECK(block_table.empty(), "BlockManager::allocate: the block table already holds ",
                 block_table.size(), " blocks (expected an unallocated sequence)");
  NANOVLLM_CHECK(!token_ids.empty(), "BlockManager::allocate: no tokens");
  NANOVLLM_CHECK(can_allocate(token_ids, use_prefix_cache), "BlockManager::allocate: ", blocks_for(int64_t(token_ids.size())),
                 " blocks needed, ", free_.size(), " free (call can_allocate first)");
  const std::vector<int32_t> hits = match_prefix(token_ids, use_prefix_cache);
  const int32_t total = blocks_for(int64_t(token_ids.size()));
  block_table.reserve(size_t(total));
  for (int32_t id : hits) {
    if (blocks_[size_t(id)].ref_count == 0) take(id, /*keep_hash=*/true);
    ++blocks_[size_t(id)].ref_count;
    block_table.push_back(id);
  }
  while (int32_t(block_table.size()) < total) {
    const int32_t id = free_.front();
    take(id, /*keep_hash=*/false);
    blocks_[size_t(id)].ref_count = 1;
    block_table.push_back(id);
  }
  const int32_t cached = int32_t(hits.size()) * block_size_;
  hit_tokens_ += cached;
  miss_tokens_ += int64_t(token_ids.size()) - cached;
  return cached;
}

void BlockManager::deallocate(std::vector<int32_t>& block_table) {
  // Tail blocks go back first, so they are reused before the (more shareable) head of the prefix.
  for (auto it = block_table.rbegin(); it != block_table.rend(); ++it) {
    NANOVLLM_CHECK(*it >= 0 && *it < num_blocks(), "BlockManager::deallocate: block id ", *it,
                   " out of range [0, ", num_blocks(), ")");
    release(*it);
  }
  block_table.clear();
}

bool BlockManager::can_append(int32_t num_tokens, const std::vector<int32_t>& block_table) const {
  const int64_t needed = int64_t(blocks_for(num_tokens)) - int64_t(block_table.size());
  return needed <= int64_t(free_.size());
}

void BlockManager::may_append(int32_t num_tokens, std::vector<int32_t>& block_table) {
  NANOVLLM_CHECK(can_append(num_tokens, block_table), "BlockManager::may_append: ",
                 blocks_for(num_tokens) - int64_t(block_table.size()), " blocks needed, ",
                 free_.size(), " free (call can_append first)");
  while (int32_t(block_table.size()) < blocks_for(num_tokens)) {
    const int32_t id = free_.front();
    take(id, /*keep_hash=*/false);
    blocks_[size_t(id)].ref_count = 1;
    block_table.push_back(id);
  }
}

void BlockManager::register_computed(std::span<const int32_t> token_ids, int32_t num_computed_tokens,
                                     const std::vector<int32_t>& block_table) {
  if (!enable_prefix_caching_) return;
  NANOVLLM_CHECK(num_computed_tokens >= 0 && size_t(num_computed_tokens) <= token_ids.size(),
                 "BlockManager::register_computed: ", num_computed_tokens, " computed tokens of ",
                 token_ids.size());
  const size_t num_full = size_t(num_computed_tokens / block_size_);
  NANOVLLM_CHECK(num_full <= block_table.size(), "BlockManager::register_computed: ", num_full,
                 " full blocks but the table holds ", block_table.size());
  // Hashed blocks form a prefix of the table: walk back to its end, then hash forward.
  size_t first = num_full;
  while (first > 0 && !blocks_[size_t(block_table[first - 1])].has_hash) --first;
  for (size_t i = first; i < num_full; ++i) {
    const int32_t id = block_table[i];
    const uint64_t prev_hash = i == 0 ? 0 : blocks_[size_t(block_table[i - 1])].hash;
    auto tokens = token_ids.subspan(i * size_t(block_size_), size_t(block_size_));
    Block& block = blocks_[size_t(id)];
    block.hash = hasher_(prev_hash, tokens);
    block.has_hash = true;
    block.token_ids.assign(tokens.begin(), tokens.end());
    hash_to_block_[block.hash] = id;
  }
}

}  // namespace nanovllm
