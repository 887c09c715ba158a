#include "cli/score_command.h"

#include <cmath>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/engine_options.h"
#include "nanovllm/llm.h"

namespace nanovllm::cli {
namespace {

struct ScoreArgs {
  EngineOptions engine;
  std::string text;
};

void run_score(const ScoreArgs& a) {
  LLM llm(a.engine.config);
  const std::vector<int32_t> ids = llm.encode(a.text, true);
  const std::vector<double> logprobs = llm.score(ids);
  nlohmann::json lp = nlohmann::json::array();
  for (double v : logprobs) lp.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
  std::cout << nlohmann::json{{"ids", ids}, {"logprobs", lp}}.dump() << "\n";
}

}  // namespace

void register_score_command(CLI::App& app) {
  auto args = std::make_shared<ScoreArgs>();
  CLI::App* cmd = app.add_subcommand(
      "score", "print the log-probability of each prompt token given those before it");
  add_engine_options(*cmd, args->engine);
  cmd->add_option("text", args->text, "the text to score")->required();
  cmd->callback([args] {
    require_model(args->engine);
    run_score(*args);
  });
}

}  // namespace nanovllm::cli
