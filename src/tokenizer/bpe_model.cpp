#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace nanovllm {

BpeModel::BpeModel(const TokenizerSpec& spec)
    : byte_ids_(256, -1),
      byte_fallback_(spec.byte_fallback),
      ignore_merges_(spec.ignore_merges),
      fuse_unk_(spec.fuse_unk),
      unk_id_(spec.unk_id) {
  token_to_id_.reserve(spec.vocab.size() * 2);
  for (size_t id = 0; id < spec.vocab.size(); ++id)
    token_to_id_.emplace(spec.vocab[id], static_cast<int32_t>(id));
  merges_.reserve(spec.merges.size() * 2);
  std::string joined;
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    const auto a = token_to_id_.find(left), b = token_to_id_.find(right);
    joined.assign(left).append(right);
    const auto merged = token_to_id_.find(joined);
    NANOVLLM_CHECK(a != token_to_id_.end() && b != token_to_id_.end(), spec.source,
                   ": model.merges[", rank, "]: '", left, "' or '", right, "' is not in the vocab");
    NANOVLLM_CHECK(merged != token_to_id_.end(), spec.source, ": model.merges[", rank,
                   "]: merged token '", left + right, "' is not in the vocab");
    merges_.emplace(pair_key(a->second, b->second), Merge{static_cast<int32_t>(rank), merged->second});
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto it = token_to_id_.find(name); it != token_to_id_.end()) byte_ids_[b] = it->second;
  }
}

std::optional<int32_t> BpeModel::id_of(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = id_of(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(std::string(word)); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Symbols form a doubly linked list over the word; a merged-away symbol has id -1.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;  // [number of initial symbols]
  symbols.reserve(word.size());
  const auto push = [&](int32_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
  };
  bool last_was_unk = false;
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8::valid_sequence_length(word, i);
    if (n == 0) n = 1;  // cannot happen for valid input; keeps the loop total
    const std::string_view ch = word.substr(i, n);
    i += n;
    if (auto id = id_of(ch)) {
      push(*id);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (char c : ch) all_bytes = all_bytes && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes) {
        for (char c : ch) push(byte_ids_[static_cast<uint8_t>(c)]);
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (!(fuse_unk_ && last_was_unk)) push(*unk_id_);
      last_was_unk = true;
    }
    // With no unk token HF drops the character; so do we.
  }
  if (symbols.empty()) return;

  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    const auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id || it->second.rank != top.rank) continue;
    left.id = top.new_id;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace nanovllm
