#include "cli/generate_command.h"

#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/engine_options.h"
#include "core/error.h"
#include "nanovllm/llm.h"

namespace nanovllm::cli {
namespace {

struct GenerateArgs {
  EngineOptions engine;
  std::vector<std::string> prompts;
  std::string prompts_file, prompt_ids_file;
  bool chat = false, no_thinking = false, json = false;
  SamplingParams sampling;
  uint64_t seed = 0;
  bool seed_given = false;
  // Flags the user gave; the others take the model's generation_config.json defaults.
  bool temperature_given = false, top_p_given = false, top_k_given = false;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  NANOVLLM_CHECK(in.good(), "--prompts-file: cannot open '", path, "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// One JSON array of token ids per line, or one JSON array of such arrays.
std::vector<std::vector<int32_t>> read_prompt_ids(const std::string& path) {
  std::ifstream in(path);
  NANOVLLM_CHECK(in.good(), "--prompt-ids-file: cannot open '", path, "'");
  std::vector<std::vector<int32_t>> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    NANOVLLM_CHECK(!j.is_discarded() && j.is_array(), path, ":", line_no,
                   ": expected a JSON array of token ids");
    const bool nested = !j.empty() && j[0].is_array();
    for (const auto& row : nested ? j : nlohmann::json::array({j})) {
      std::vector<int32_t> ids;
      for (const auto& v : row) {
        NANOVLLM_CHECK(v.is_number_integer(), path, ":", line_no, ": token ids must be integers");
        ids.push_back(v.get<int32_t>());
      }
      out.push_back(std::move(ids));
    }
  }
  return out;
}

int run_generate(GenerateArgs& a) {
  if (a.seed_given) a.sampling.seed = a.seed;
  LLM llm(a.engine.config);
  const SamplingParams defaults = llm.default_sampling_params();
  if (!a.temperature_given) a.sampling.temperature = defaults.temperature;
  if (!a.top_p_given) a.sampling.top_p = defaults.top_p;
  if (!a.top_k_given) a.sampling.top_k = defaults.top_k;
  std::vector<Prompt> prompts;
  std::vector<std::string> texts = a.prompts;
  if (!a.prompts_file.empty())
    for (auto& line : read_lines(a.prompts_file)) texts.push_back(line);
  for (const std::string& t : texts) {
    if (a.chat) {
      const std::string formatted =
          llm.apply_chat_template({{"user", t}}, true, !a.no_thinking);
      prompts.emplace_back(llm.encode(formatted, false));
    } else {
      prompts.emplace_back(t);
    }
  }
  if (!a.prompt_ids_file.empty())
    for (auto& ids : read_prompt_ids(a.prompt_ids_file)) prompts.emplace_back(std::move(ids));
  NANOVLLM_CHECK(!prompts.empty(), "generate: no prompt given (PROMPT..., --prompts-file or "
                 "--prompt-ids-file)");
  const auto outputs = llm.generate(prompts, a.sampling, !a.json);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const RequestOutput& o = outputs[i];
    if (a.json) {
      nlohmann::json j{{"prompt_token_ids", o.prompt_token_ids},
                       {"text", o.text},
                       {"token_ids", o.token_ids},
                       {"finish_reason", o.finish_reason}};
      if (a.sampling.logprobs >= 0) {
        nlohmann::json lps = nlohmann::json::array();
        for (const TokenLogprob& lp : o.logprobs) lps.push_back({{"logprob", lp.logprob}, {"top", lp.top}});
        j["logprobs"] = std::move(lps);
      }
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      if (i < texts.size()) std::cout << "Prompt: " << texts[i] << "\n";
      std::cout << "Completion: " << o.text << "\n";
      if (i + 1 < outputs.size()) std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace

void register_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "generate completions for prompts");
  add_engine_options(*cmd, args->engine);
  cmd->add_option("prompts", args->prompts, "prompt texts");
  cmd->add_option("--prompts-file", args->prompts_file, "file with one prompt per line");
  cmd->add_option("--prompt-ids-file", args->prompt_ids_file,
                  "file with a JSON array of token ids per line");
  cmd->add_flag("--chat", args->chat, "format each prompt as a user message of the chat format");
  cmd->add_flag("--no-thinking", args->no_thinking, "with --chat: Qwen3's enable_thinking=False");
  SamplingParams& s = args->sampling;
  GenerateArgs* a = args.get();
  cmd->add_option("--temperature", s.temperature,
                  "0 (or below 1e-5) is greedy (default: the model's, else 1)")
      ->check(non_negative_number())
      ->each([a](const std::string&) { a->temperature_given = true; });
  cmd->add_option("--top-p", s.top_p, "nucleus sampling mass (default: the model's, else 1)")
      ->check(CLI::Range(0.0, 1.0))
      ->each([a](const std::string&) { a->top_p_given = true; });
  cmd->add_option("--top-k", s.top_k, "keep the k most likely tokens (default: the model's, else all)")
      ->each([a](const std::string&) { a->top_k_given = true; });
  cmd->add_option("--seed", args->seed, "sampling seed")->each([a = args.get()](const std::string&) {
    a->seed_given = true;
  });
  cmd->add_option("--max-tokens", s.max_tokens, "tokens to generate")->check(positive_number());
  cmd->add_flag("--ignore-eos", s.ignore_eos, "keep generating past end-of-sequence");
  cmd->add_option("--stop", s.stop, "stop string (repeatable)");
  cmd->add_option("--stop-token-ids", s.stop_token_ids, "stop token ids");
  cmd->add_option("--logprobs", s.logprobs,
                  "with --json: each token's log-probability and the N most likely ([id, logprob] pairs)")
      ->check(CLI::Range(0, SamplingParams::kMaxLogprobs));
  cmd->add_flag("--json", args->json, "one JSON object per prompt on stdout, nothing else");
  cmd->callback([cmd, args] {
    require_model(args->engine);
    run_generate(*args);
  });
}

}  // namespace nanovllm::cli
