#pragma once
// The BPE model: vocabulary, merge ranks, and the merge loop that turns one pre-tokenized
// word (model-space text: byte-level chars or "▁"-pieces) into ids. Results of short words
// are cached; the cache is thread-safe.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace nanovllm {

class BpeModel {
 public:
  // Keeps views into spec.vocab: `spec` must outlive the model and stay unchanged.
  explicit BpeModel(const TokenizerSpec& spec);

  // Appends the ids of one word to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  std::optional<int32_t> id_of(std::string_view token) const;
  int32_t byte_fallback_id(uint8_t byte) const { return byte_ids_[byte]; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string_view, int32_t> token_to_id_;  // views into spec.vocab
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank and merged id
  std::vector<int32_t> byte_ids_;               // [256] id of <0xXX>, -1 when absent
  bool byte_fallback_;
  bool ignore_merges_;
  bool fuse_unk_;
  std::optional<int32_t> unk_id_;

  static constexpr size_t kMaxCachedWordBytes = 64;
  static constexpr size_t kMaxCacheEntries = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace nanovllm
