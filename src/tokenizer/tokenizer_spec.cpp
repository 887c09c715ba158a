#include "tokenizer/tokenizer_spec.h"

#include <algorithm>
#include <unordered_map>

namespace nanovllm {

std::vector<std::pair<std::string, std::string>> merges_from_scores(const std::vector<std::string>& vocab,
                                                                    const std::vector<float>& scores) {
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocab.size(); ++i) ids.emplace(vocab[i], static_cast<int32_t>(i));
  struct Candidate {
    int32_t left, right;
    float score;
    size_t left_len;
    int32_t merged;
  };
  std::vector<Candidate> candidates;
  for (size_t id = 0; id < vocab.size(); ++id) {
    const std::string& piece = vocab[id];
    std::vector<Candidate> local;
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if ((static_cast<uint8_t>(piece[cut]) & 0xC0) == 0x80) continue;  // split at char boundaries
      const auto l = ids.find(piece.substr(0, cut)), r = ids.find(piece.substr(cut));
      if (l != ids.end() && r != ids.end())
        local.push_back({l->second, r->second, id < scores.size() ? scores[id] : 0.0f, cut, static_cast<int32_t>(id)});
    }
    std::sort(local.begin(), local.end(),
              [](const Candidate& a, const Candidate& b) { return std::tie(a.left, a.right) < std::tie(b.left, b.right); });
    candidates.insert(candidates.end(), local.begin(), local.end());
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    const std::string& piece = vocab[c.merged];
    merges.emplace_back(piece.substr(0, c.left_len), piece.substr(c.left_len));
  }
  return merges;
}

}  // namespace nanovllm
