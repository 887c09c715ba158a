#include "tokenizer/tokenizer_json.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/pretokenizer_regex.h"

namespace nanovllm {
namespace {

using nlohmann::json;

const char* const kSpaceMarker = "\xE2\x96\x81";  // "▁"

const json& require(const json& parent, const char* key, const std::string& path, const std::string& source) {
  NANOVLLM_CHECK(parent.is_object() && parent.contains(key), source, ": field '", path, key,
                 "' is missing");
  return parent.at(key);
}

std::string require_string(const json& parent, const char* key, const std::string& path,
                           const std::string& source) {
  const json& v = require(parent, key, path, source);
  NANOVLLM_CHECK(v.is_string(), source, ": field '", path, key, "' must be a string, got ", v.type_name());
  return v.get<std::string>();
}

bool optional_bool(const json& parent, const char* key, bool fallback) {
  if (!parent.is_object() || !parent.contains(key) || !parent.at(key).is_boolean()) return fallback;
  return parent.at(key).get<bool>();
}

// A pattern object {"String": s} or {"Regex": r} as a PCRE2 regex.
std::string pattern_regex(const json& pattern, const std::string& path, const std::string& source) {
  NANOVLLM_CHECK(pattern.is_object(), source, ": field '", path, "' must be an object");
  if (pattern.contains("Regex")) return require_string(pattern, "Regex", path + ".", source);
  const std::string literal = require_string(pattern, "String", path + ".", source);
  std::string escaped;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) escaped.push_back('\\');
    escaped.push_back(c);
  }
  return escaped;
}

std::string literal_pattern(const json& pattern, const std::string& path, const std::string& source) {
  NANOVLLM_CHECK(pattern.is_object() && pattern.contains("String"), source, ": field '", path,
                 "' must be {\"String\": ...} (regex replacements are not supported)");
  return require_string(pattern, "String", path + ".", source);
}

void parse_normalizer(const json& n, const std::string& path, TokenizerSpec& spec) {
  if (n.is_null()) return;
  const std::string type = require_string(n, "type", path + ".", spec.source);
  using K = NormalizerStep::Kind;
  if (type == "Sequence") {
    const json& list = require(n, "normalizers", path + ".", spec.source);
    NANOVLLM_CHECK(list.is_array(), spec.source, ": field '", path, ".normalizers' must be an array");
    for (size_t i = 0; i < list.size(); ++i)
      parse_normalizer(list[i], path + ".normalizers[" + std::to_string(i) + "]", spec);
  } else if (type == "NFC") {
    spec.normalizer.push_back({K::kNfc, "", ""});
  } else if (type == "NFKC") {
    spec.normalizer.push_back({K::kNfkc, "", ""});
  } else if (type == "NFD") {
    spec.normalizer.push_back({K::kNfd, "", ""});
  } else if (type == "NFKD") {
    spec.normalizer.push_back({K::kNfkd, "", ""});
  } else if (type == "Lowercase") {
    spec.normalizer.push_back({K::kLowercase, "", ""});
  } else if (type == "Prepend") {
    spec.normalizer.push_back({K::kPrepend, "", require_string(n, "prepend", path + ".", spec.source)});
  } else if (type == "Replace") {
    spec.normalizer.push_back({K::kReplace, literal_pattern(require(n, "pattern", path + ".", spec.source),
                                                            path + ".pattern", spec.source),
                               require_string(n, "content", path + ".", spec.source)});
  } else {
    throw_error(spec.source, ": field '", path, ".type': unsupported normalizer '", type,
                "' (supported: NFC, NFKC, NFD, NFKD, Lowercase, Prepend, Replace, Sequence)");
  }
}

// Returns true when a ByteLevel pre-tokenizer was found.
bool parse_pre_tokenizer(const json& p, const std::string& path, TokenizerSpec& spec) {
  if (p.is_null()) return false;
  const std::string type = require_string(p, "type", path + ".", spec.source);
  if (type == "Sequence") {
    const json& list = require(p, "pretokenizers", path + ".", spec.source);
    NANOVLLM_CHECK(list.is_array(), spec.source, ": field '", path, ".pretokenizers' must be an array");
    bool byte_level = false;
    for (size_t i = 0; i < list.size(); ++i)
      byte_level |= parse_pre_tokenizer(list[i], path + ".pretokenizers[" + std::to_string(i) + "]", spec);
    return byte_level;
  }
  if (type == "Split") {
    const std::string behavior = p.value("behavior", std::string("Isolated"));
    NANOVLLM_CHECK(behavior == "Isolated" && !optional_bool(p, "invert", false), spec.source, ": field '",
                   path, ".behavior': only Split with behavior Isolated and invert false is supported, got ",
                   behavior);
    spec.split_regexes.push_back(pattern_regex(require(p, "pattern", path + ".", spec.source),
                                               path + ".pattern", spec.source));
    return false;
  }
  if (type == "ByteLevel") {
    spec.byte_level_add_prefix_space = optional_bool(p, "add_prefix_space", false);
    if (optional_bool(p, "use_regex", true)) spec.split_regexes.push_back(kGpt2SplitRegex);
    return true;
  }
  if (type == "Digits") {
    spec.split_regexes.push_back(optional_bool(p, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    return false;
  }
  if (type == "Metaspace") {
    MetaspaceSpec m;
    m.replacement = p.value("replacement", std::string(kSpaceMarker));
    const std::string scheme = p.value("prepend_scheme", std::string(
        optional_bool(p, "add_prefix_space", true) ? "always" : "never"));
    m.prepend = scheme == "first" ? MetaspaceSpec::Prepend::kFirst
              : scheme == "never" ? MetaspaceSpec::Prepend::kNever
                                  : MetaspaceSpec::Prepend::kAlways;
    m.split = optional_bool(p, "split", true);
    spec.metaspace = m;
    return false;
  }
  throw_error(spec.source, ": field '", path, ".type': unsupported pre_tokenizer '", type,
              "' (supported: Split, ByteLevel, Digits, Metaspace, Sequence)");
}

// Reads the decoder only to learn whether SentencePiece's leading space is stripped.
void parse_decoder(const json& d, const std::string& path, TokenizerSpec& spec) {
  if (d.is_null()) return;
  const std::string type = require_string(d, "type", path + ".", spec.source);
  if (type == "Sequence") {
    const json& list = require(d, "decoders", path + ".", spec.source);
    for (size_t i = 0; i < list.size(); ++i)
      parse_decoder(list[i], path + ".decoders[" + std::to_string(i) + "]", spec);
  } else if (type == "Strip") {
    if (d.value("start", 0) > 0 && d.value("content", std::string(" ")) == " ")
      spec.decoder_strip_leading_space = true;
  } else if (type == "Metaspace") {
    const std::string scheme = d.value("prepend_scheme", std::string(
        optional_bool(d, "add_prefix_space", true) ? "always" : "never"));
    spec.decoder_strip_leading_space = scheme != "never";
  } else if (type != "ByteLevel" && type != "Replace" && type != "ByteFallback" && type != "Fuse") {
    throw_error(spec.source, ": field '", path, ".type': unsupported decoder '", type,
                "' (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
  }
}

// True when the decoder is, or is a Sequence holding, a decoder of this type.
bool decoder_has(const json& d, std::string_view type) {
  if (!d.is_object()) return false;
  if (d.value("type", "") == type) return true;
  if (d.contains("decoders") && d.at("decoders").is_array())
    for (const json& sub : d.at("decoders"))
      if (decoder_has(sub, type)) return true;
  return false;
}

void parse_model(const json& m, RawTokenizerJson& raw, TokenizerSpec& spec) {
  NANOVLLM_CHECK(m.is_object(), spec.source, ": field 'model' must be an object");
  const std::string type = m.value("type", std::string("BPE"));
  NANOVLLM_CHECK(type == "BPE", spec.source, ": field 'model.type': unsupported model type '", type,
                 "' (only BPE is supported)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(key) && m.at(key).is_string())
      NANOVLLM_CHECK(m.at(key).get<std::string>().empty(), spec.source, ": field 'model.", key,
                     "' is not supported (must be empty or null)");
  }
  NANOVLLM_CHECK(raw.vocab.has_value(), spec.source, ": field 'model.vocab' is missing");
  NANOVLLM_CHECK(raw.merges.has_value(), spec.source, ": field 'model.merges' is missing");
  int64_t max_id = -1;
  for (const auto& [token, id] : *raw.vocab) max_id = std::max(max_id, id);
  spec.vocab.assign(static_cast<size_t>(max_id + 1), std::string());
  for (auto& [token, id] : *raw.vocab) spec.vocab[static_cast<size_t>(id)] = std::move(token);
  spec.merges = std::move(*raw.merges);
  spec.byte_fallback = optional_bool(m, "byte_fallback", false);
  spec.ignore_merges = optional_bool(m, "ignore_merges", false);
  spec.fuse_unk = optional_bool(m, "fuse_unk", false);
  if (m.contains("unk_token") && m.at("unk_token").is_string()) {
    const std::string unk = m.at("unk_token").get<std::string>();
    const auto it = std::find(spec.vocab.begin(), spec.vocab.end(), unk);
    NANOVLLM_CHECK(it != spec.vocab.end(), spec.source, ": field 'model.unk_token': '", unk, "' is not in the vocab");
    spec.unk_id = static_cast<int32_t>(it - spec.vocab.begin());
  }
}

void parse_added_tokens(const json& list, TokenizerSpec& spec) {
  if (list.is_null()) return;
  NANOVLLM_CHECK(list.is_array(), spec.source, ": field 'added_tokens' must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& t = list[i];
    const std::string path = "added_tokens[" + std::to_string(i) + "].";
    AddedToken token;
    const json& id = require(t, "id", path, spec.source);
    NANOVLLM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1 << 30),
                   spec.source, ": field '", path, "id' must be a non-negative integer");
    token.id = id.get<int32_t>();
    token.content = require_string(t, "content", path, spec.source);
    token.special = optional_bool(t, "special", false);
    token.lstrip = optional_bool(t, "lstrip", false);
    token.rstrip = optional_bool(t, "rstrip", false);
    token.single_word = optional_bool(t, "single_word", false);
    token.normalized = optional_bool(t, "normalized", !token.special);
    spec.added_tokens.push_back(std::move(token));
  }
}

void parse_post_processor(const json& p, const std::string& path, TokenizerSpec& spec) {
  if (p.is_null()) return;
  const std::string type = require_string(p, "type", path + ".", spec.source);
  if (type == "Sequence") {
    const json& list = require(p, "processors", path + ".", spec.source);
    for (size_t i = 0; i < list.size(); ++i)
      parse_post_processor(list[i], path + ".processors[" + std::to_string(i) + "]", spec);
  } else if (type == "TemplateProcessing") {
    const json& single = require(p, "single", path + ".", spec.source);
    const json& specials = p.value("special_tokens", json::object());
    bool after_sequence = false;
    for (const json& piece : single) {
      if (piece.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      const std::string name = require_string(require(piece, "SpecialToken", path + ".single[].", spec.source),
                                              "id", path + ".single[].SpecialToken.", spec.source);
      NANOVLLM_CHECK(specials.contains(name), spec.source, ": field '", path, ".special_tokens' lacks '", name, "'");
      for (const json& id : require(specials.at(name), "ids", path + ".special_tokens." + name + ".", spec.source))
        (after_sequence ? spec.suffix_ids : spec.prefix_ids).push_back(id.get<int32_t>());
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    spec.prefix_ids.push_back(require(p, "cls", path + ".", spec.source).at(1).get<int32_t>());
    spec.suffix_ids.push_back(require(p, "sep", path + ".", spec.source).at(1).get<int32_t>());
  } else if (type != "ByteLevel") {
    throw_error(spec.source, ": field '", path, ".type': unsupported post_processor '", type, "'");
  }
}

std::optional<int32_t> find_token_id(const TokenizerSpec& spec, const std::string& token) {
  for (const AddedToken& t : spec.added_tokens)
    if (t.content == token) return t.id;
  const auto it = std::find(spec.vocab.begin(), spec.vocab.end(), token);
  if (it != spec.vocab.end()) return static_cast<int32_t>(it - spec.vocab.begin());
  return std::nullopt;
}

// bos_token / eos_token may be a string, {"content": ...} or null.
std::optional<std::string> token_text(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  return std::nullopt;
}

void add_eos(TokenizerSpec& spec, int32_t id) {
  if (std::find(spec.eos_ids.begin(), spec.eos_ids.end(), id) == spec.eos_ids.end()) spec.eos_ids.push_back(id);
}

// Moves model.vocab and model.merges of an in-memory document into `raw`, checking them.
void extract_vocab_and_merges(const json& root, RawTokenizerJson& raw, const std::string& source) {
  if (!root.is_object() || !root.contains("model") || !root.at("model").is_object()) return;
  const json& m = root.at("model");
  if (m.contains("vocab")) {
    const json& vocab = m.at("vocab");
    NANOVLLM_CHECK(vocab.is_object(), source, ": field 'model.vocab' must be an object token -> id");
    raw.vocab.emplace();
    for (const auto& [token, id] : vocab.items()) {
      NANOVLLM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1 << 30), source,
                     ": field 'model.vocab': id of token '", token, "' must be a non-negative integer");
      raw.vocab->emplace_back(token, id.get<int64_t>());
    }
  }
  if (m.contains("merges")) {
    const json& merges = m.at("merges");
    NANOVLLM_CHECK(merges.is_array(), source, ": field 'model.merges' must be an array");
    raw.merges.emplace();
    for (size_t i = 0; i < merges.size(); ++i) {
      const json& merge = merges[i];
      if (merge.is_string()) {
        const std::string& text = merge.get_ref<const std::string&>();
        const size_t space = text.find(' ');
        NANOVLLM_CHECK(space != std::string::npos && text.find(' ', space + 1) == std::string::npos, source,
                       ": field 'model.merges[", i, "]' must be \"left right\", got \"", text, "\"");
        raw.merges->emplace_back(text.substr(0, space), text.substr(space + 1));
      } else {
        NANOVLLM_CHECK(merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string(),
                       source, ": field 'model.merges[", i, "]' must be a string or a pair of strings");
        raw.merges->emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      }
    }
  }
}

}  // namespace

TokenizerSpec parse_tokenizer_json(const json& root, const std::string& source) {
  RawTokenizerJson raw;
  extract_vocab_and_merges(root, raw, source);
  raw.root = root;
  if (raw.root.is_object() && raw.root.contains("model") && raw.root["model"].is_object()) {
    raw.root["model"].erase("vocab");
    raw.root["model"].erase("merges");
  }
  return parse_tokenizer_json(std::move(raw), source);
}

TokenizerSpec parse_tokenizer_json(RawTokenizerJson raw, const std::string& source) try {
  TokenizerSpec spec;
  spec.source = source;
  const json& root = raw.root;
  NANOVLLM_CHECK(root.is_object(), source, ": expected a JSON object at the top level");
  parse_model(require(root, "model", "", source), raw, spec);
  parse_added_tokens(root.value("added_tokens", json()), spec);
  parse_normalizer(root.value("normalizer", json()), "normalizer", spec);
  const bool byte_level = parse_pre_tokenizer(root.value("pre_tokenizer", json()), "pre_tokenizer", spec) ||
                          decoder_has(root.value("decoder", json()), "ByteLevel");
  spec.model = byte_level ? TokenizerModelKind::kByteLevelBpe : TokenizerModelKind::kSentencePieceBpe;
  parse_decoder(root.value("decoder", json()), "decoder", spec);
  spec.decoder_byte_fallback = decoder_has(root.value("decoder", json()), "ByteFallback");
  parse_post_processor(root.value("post_processor", json()), "post_processor", spec);
  if (!spec.prefix_ids.empty()) spec.bos_id = spec.prefix_ids.front();
  return spec;
} catch (const json::exception& e) {
  throw_error(source, ": malformed tokenizer description: ", e.what());
}

void apply_tokenizer_config(TokenizerSpec& spec, const json& config, const std::string& source) try {
  NANOVLLM_CHECK(config.is_object(), source, ": expected a JSON object at the top level");
  if (auto bos = token_text(config, "bos_token")) {
    const auto id = find_token_id(spec, *bos);
    NANOVLLM_CHECK(id.has_value(), source, ": field 'bos_token': '", *bos, "' is not a known token");
    spec.bos_id = id;
  } else if (config.contains("bos_token") && config.at("bos_token").is_null()) {
    spec.bos_id.reset();
  }
  if (auto eos = token_text(config, "eos_token")) {
    const auto id = find_token_id(spec, *eos);
    NANOVLLM_CHECK(id.has_value(), source, ": field 'eos_token': '", *eos, "' is not a known token");
    add_eos(spec, *id);
  }
  // add_bos_token / add_eos_token override the post-processor (LlamaTokenizerFast does this).
  if (config.contains("add_bos_token") && config.at("add_bos_token").is_boolean() && spec.bos_id) {
    const bool has = !spec.prefix_ids.empty() && spec.prefix_ids.front() == *spec.bos_id;
    if (config.at("add_bos_token").get<bool>() && !has) spec.prefix_ids.insert(spec.prefix_ids.begin(), *spec.bos_id);
    if (!config.at("add_bos_token").get<bool>() && has) spec.prefix_ids.erase(spec.prefix_ids.begin());
  }
  if (config.contains("add_eos_token") && config.at("add_eos_token").is_boolean() && !spec.eos_ids.empty()) {
    const int32_t eos = spec.eos_ids.front();
    const bool has = !spec.suffix_ids.empty() && spec.suffix_ids.back() == eos;
    if (config.at("add_eos_token").get<bool>() && !has) spec.suffix_ids.push_back(eos);
    if (!config.at("add_eos_token").get<bool>() && has) spec.suffix_ids.pop_back();
  }
  if (config.contains("chat_template")) {
    const json& t = config.at("chat_template");
    if (t.is_string()) {
      spec.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const json& entry : t)
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template"))
          spec.chat_template = entry.at("template").get<std::string>();
    }
  }
} catch (const json::exception& e) {
  throw_error(source, ": malformed field: ", e.what());
}

void apply_generation_config(TokenizerSpec& spec, const json& config, const std::string& source) {
  NANOVLLM_CHECK(config.is_object(), source, ": expected a JSON object at the top level");
  if (!config.contains("eos_token_id")) return;
  const json& eos = config.at("eos_token_id");
  if (eos.is_number_integer()) {
    add_eos(spec, eos.get<int32_t>());
  } else if (eos.is_array()) {
    for (const json& id : eos) {
      NANOVLLM_CHECK(id.is_number_integer(), source, ": field 'eos_token_id' must hold integers");
      add_eos(spec, id.get<int32_t>());
    }
  }
}

json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  NANOVLLM_CHECK(in.good(), file.string(), ": cannot open file");
  // Parsing from memory is several times faster than from the stream.
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw_error(file.string(), ": invalid JSON: ", e.what());
  }
}

TokenizerSpec load_tokenizer_dir(const std::filesystem::path& dir) {
  const auto tokenizer_file = dir / "tokenizer.json";
  NANOVLLM_CHECK(std::filesystem::exists(tokenizer_file), tokenizer_file.string(),
                 ": file not found (a tokenizer folder must hold tokenizer.json)");
  TokenizerSpec spec = parse_tokenizer_json(read_tokenizer_json(tokenizer_file), tokenizer_file.string());
  if (const auto config = dir / "tokenizer_config.json"; std::filesystem::exists(config))
    apply_tokenizer_config(spec, read_json_file(config), config.string());
  if (const auto gen = dir / "generation_config.json"; std::filesystem::exists(gen))
    apply_generation_config(spec, read_json_file(gen), gen.string());
  return spec;
}

}  // namespace nanovllm
