#include "tokenizer/tokenizer_json_reader.h"

#include <fstream>
#include <iterator>

#include "core/error.h"

namespace nanovllm {
namespace {

using nlohmann::json;

class Reader : public nlohmann::json_sax<json> {
 public:
  explicit Reader(RawTokenizerJson& out) : out_(out) {}
  std::string error;

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return mode_ == Mode::kVocab ? vocab_id(v) : value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override {
    return mode_ == Mode::kVocab ? vocab_id(static_cast<int64_t>(v)) : value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) return merge_string(v);
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return fail("model.vocab / model.merges hold an unexpected object");
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::kVocab;
      out_.vocab.emplace();
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kDom) return fail(mode_ == Mode::kVocab ? "model.vocab: ids must be integers"
                                                               : "model.merges: a merge must be a string or a pair of strings");
    if (in_model() && key_ == "merges") {
      mode_ = Mode::kMerges;
      out_.merges.emplace();
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2)
        return fail("model.merges[" + std::to_string(out_.merges->size()) + "] must be a pair of strings");
      out_.merges->emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    return fail("invalid JSON at byte " + std::to_string(position) + ": " + e.what());
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  // True directly inside the top-level "model" object.
  bool in_model() const { return stack_.size() == 2 && stack_keys_[1] == "model"; }
  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  bool vocab_id(int64_t id) {
    if (id < 0 || id >= (int64_t{1} << 30))
      return fail("model.vocab: id of token '" + key_ + "' must be a non-negative integer");
    out_.vocab->emplace_back(std::move(key_), id);
    return true;
  }
  bool merge_string(const std::string& text) {
    const size_t space = text.find(' ');
    if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
      return fail("model.merges[" + std::to_string(out_.merges->size()) + "] must be \"left right\", got \"" + text + "\"");
    out_.merges->emplace_back(text.substr(0, space), text.substr(space + 1));
    return true;
  }
  // Puts a scalar into the current container (or makes it the root).
  bool value(json v) {
    if (mode_ == Mode::kVocab) return fail("model.vocab: id of token '" + key_ + "' must be a non-negative integer");
    if (mode_ != Mode::kDom) return fail("model.merges: a merge must be a string or a pair of strings");
    insert(std::move(v));
    return true;
  }
  json* insert(json v) {
    if (stack_.empty()) {
      out_.root = std::move(v);
      return &out_.root;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    return &(parent[key_] = std::move(v));
  }
  bool open(json container) {
    const std::string key = key_;
    json* child = insert(std::move(container));
    if (!stack_.empty() && stack_.back()->is_object()) stack_keys_.push_back(key);
    else stack_keys_.push_back("[]");
    stack_.push_back(child);
    return true;
  }
  bool close() {
    stack_.pop_back();
    stack_keys_.pop_back();
    return true;
  }

  RawTokenizerJson& out_;
  Mode mode_ = Mode::kDom;
  std::vector<json*> stack_;  // open containers; pointers stay valid (only the last child grows)
  std::vector<std::string> stack_keys_;  // key (or "[]") under which each open container sits
  std::string key_;
  std::vector<std::string> pair_;
};

}  // namespace

RawTokenizerJson read_tokenizer_json(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  NANOVLLM_CHECK(in.good(), file.string(), ": cannot open file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  RawTokenizerJson out;
  Reader reader(out);
  const bool ok = json::sax_parse(text, &reader);
  if (!ok || !reader.error.empty()) {
    throw_error(file.string(), ": ", reader.error.empty() ? std::string("invalid JSON") : reader.error);
  }
  return out;
}

}  // namespace nanovllm
