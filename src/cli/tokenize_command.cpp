#include "cli/tokenize_command.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace nanovllm::cli {
namespace {

struct TokenizeArgs {
  std::string model, input;
  bool chat = false, no_thinking = false;
};

std::vector<ChatMessage> parse_messages(const std::string& input) {
  nlohmann::json j = nlohmann::json::parse(input, nullptr, false);
  NANOVLLM_CHECK(!j.is_discarded() && j.is_array(),
                 "tokenize --chat: INPUT must be a JSON array of {\"role\", \"content\"} messages");
  std::vector<ChatMessage> messages;
  for (const auto& m : j) {
    NANOVLLM_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() &&
                       m.contains("content") && m["content"].is_string(),
                   "tokenize --chat: each message needs string fields \"role\" and \"content\"");
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return messages;
}

void run_tokenize(const TokenizeArgs& a) {
  const Tokenizer tok = Tokenizer::from_dir(std::filesystem::path(a.model));
  std::string text = a.input;
  bool add_special = true;
  if (a.chat) {
    text = tok.apply_chat_template(parse_messages(a.input), true, !a.no_thinking);
    add_special = false;  // the chat format already holds the special tokens it needs
  }
  nlohmann::json out{{"text", text}, {"ids", tok.encode(text, add_special)}};
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

void register_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the token ids of a text as JSON");
  cmd->add_option("--model", args->model, "folder with tokenizer.json")->required();
  cmd->add_option("input", args->input, "text, or with --chat a JSON array of messages")->required();
  cmd->add_flag("--chat", args->chat, "format INPUT with the model's chat format");
  cmd->add_flag("--no-thinking", args->no_thinking, "with --chat: Qwen3's enable_thinking=False");
  cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace nanovllm::cli
