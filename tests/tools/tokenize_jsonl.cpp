// Tokenizes JSON lines for the Python cross-checks against Hugging Face.
//   tokenize_jsonl < lines      each line {"tokenizer_dir": DIR, "text": T [, "add_special_tokens": B]}
//   tokenize_jsonl DIR < lines  each line {"text": T [, ...]} (or a bare JSON string)
// Prints one line per input: {"ids": [...], "decoded": D, "decoded_skip_special": D2}, or
// {"error": MESSAGE} for a bad line (the tool keeps going).
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  using nlohmann::json;
  std::map<std::string, std::unique_ptr<nanovllm::Tokenizer>> tokenizers;  // by folder
  const std::string default_dir = argc > 1 ? argv[1] : "";
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json out;
    try {
      const json in = json::parse(line);
      const std::string text = in.is_string() ? in.get<std::string>() : in.at("text").get<std::string>();
      const std::string dir = in.is_object() ? in.value("tokenizer_dir", default_dir) : default_dir;
      const bool add_special = in.is_object() ? in.value("add_special_tokens", true) : true;
      NANOVLLM_CHECK(!dir.empty(), "tokenize_jsonl: no tokenizer_dir in the line and none given as argv[1]");
      auto& tok = tokenizers[dir];
      if (!tok) tok = std::make_unique<nanovllm::Tokenizer>(nanovllm::Tokenizer::from_dir(dir));
      const auto ids = tok->encode(text, add_special);
      out = {{"ids", ids}, {"decoded", tok->decode(ids, false)}, {"decoded_skip_special", tok->decode(ids, true)}};
    } catch (const std::exception& e) {
      out = {{"error", e.what()}};
    }
    std::cout << out.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace) << "\n" << std::flush;
  }
  return 0;
}
