#pragma once
// Paged KV cache bookkeeping (nano-vllm's BlockManager): blocks are ids with ref counts, a free
// list, and prefix caching by a chained hash over full blocks confirmed by their token ids.
// It knows nothing about tensors: a sequence is its token ids plus its block table.
//
// Differences from nano-vllm, on purpose:
// - A full block's hash is registered once its K/V are computed (register_computed), not when it
//   is allocated, so a chunked prefill never hands out a block whose K/V are not written yet.
// - allocate() never serves the whole sequence from the cache: when every block would hit, the
//   last one is allocated fresh so at least one token is computed and no shared block is written.
#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace nanovllm {

class BlockManager {
 public:
  // Hash of one full block's tokens chained on the previous block's hash (0 for the first block).
  using Hasher = std::function<uint64_t(uint64_t prev_hash, std::span<const int32_t> token_ids)>;

  // XXH3-64 of the tokens' bytes seeded with prev_hash.
  static uint64_t default_hash(uint64_t prev_hash, std::span<const int32_t> token_ids);

  // hasher: empty means default_hash (tests inject a colliding one).
  BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching = true,
               Hasher hasher = {});

  int32_t num_blocks() const { return int32_t(blocks_.size()); }
  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return enable_prefix_caching_; }
  int32_t num_free_blocks() const { return int32_t(free_.size()); }
  int32_t ref_count(int32_t block_id) const;
  // Blocks needed to hold num_tokens tokens.
  int32_t blocks_for(int64_t num_tokens) const;

  // Whether allocate(token_ids, ...) would find enough free blocks (hits on blocks in use cost none).
  bool can_allocate(std::span<const int32_t> token_ids, bool use_prefix_cache = true) const;
  // Fills an empty block_table with blocks for all of token_ids, reusing cached full blocks from
  // the front while hash and tokens match. Returns the number of cached tokens (a multiple of
  // block_size, always < token_ids.size()). use_prefix_cache = false takes no cached block (for
  // passes that need every position computed). Throws if can_allocate is false.
  int32_t allocate(std::span<const int32_t> token_ids, std::vector<int32_t>& block_table,
                   bool use_prefix_cache = true);
  // Drops one reference to each block and clears the table. Freed blocks keep their hash and can
  // be hit again until they are reused.
  void deallocate(std::vector<int32_t>& block_table);

  // Decode: whether the table can grow to hold num_tokens tokens.
  bool can_append(int32_t num_tokens, const std::vector<int32_t>& block_table) const;
  // Grows the table to blocks_for(num_tokens) blocks. Throws if can_append is false.
  void may_append(int32_t num_tokens, std::vector<int32_t>& block_table);

  // Makes every full block of tokens [0, num_computed_tokens) hittable by later allocations.
  void register_computed(std::span<const int32_t> token_ids, int32_t num_computed_tokens,
                         const std::vector<int32_t>& block_table);

  // Prefix-cache counters over all allocate() calls, in tokens.
  int64_t hit_tokens() const { return hit_tokens_; }
  int64_t miss_tokens() const { return miss_tokens_; }
  double hit_rate() const;
  void reset_counters() { hit_tokens_ = miss_tokens_ = 0; }

  // Forgets every cached prefix (vLLM's reset_prefix_cache): later prompts compute all their
  // tokens. Only with no block in use; returns false and changes nothing otherwise.
  bool reset_prefix_cache();

 private:
  struct Block {
    int32_t ref_count = 0;
    bool has_hash = false;
    uint64_t hash = 0;
    std::vector<int32_t> token_ids;  // [block_size] once hashed: the collision guard
    std::list<int32_t>::iterator free_pos;  // valid while ref_count == 0
  };

  // Block ids that allocate() would reuse from the cache for token_ids, in order.
  std::vector<int32_t> match_prefix(std::span<const int32_t> token_ids, bool use_prefix_cache) const;
  // Takes a block off the free list (evicting its stale hash when it is not a reuse of it).
  void take(int32_t block_id, bool keep_hash);
  void release(int32_t block_id);
  void forget_hash(int32_t block_id);

  int32_t block_size_;
  bool enable_prefix_caching_;
  Hasher hasher_;
  std::vector<Block> blocks_;
  std::list<int32_t> free_;  // least recently freed first: allocation takes from the front
  std::unordered_map<uint64_t, int32_t> hash_to_block_;
  int64_t hit_tokens_ = 0;
  int64_t miss_tokens_ = 0;
};

}  // namespace nanovllm
