#include "cli/eval_command.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/engine_options.h"
#include "core/error.h"
#include "engine/kv_eval.h"

namespace nanovllm::cli {
namespace {

struct EvalArgs {
  EngineOptions engine;
  std::string text_file;
  int32_t window = 0;  // 0: the model's context (max_model_len)
  bool json = false;
};

void run_eval(const EvalArgs& a) {
  std::ifstream in(a.text_file, std::ios::binary);
  NANOVLLM_CHECK(in.good(), "eval --text: cannot open '", a.text_file, "'");
  std::stringstream buf;
  buf << in.rdbuf();

  Config ref_config = a.engine.config;
  ref_config.kv_cache_dtype = "auto";
  ref_config.kv_quant = false;  // the reference is the model dtype
  ref_config.max_num_seqs = std::min(ref_config.max_num_seqs, 256);
  Config cand_config = ref_config;
  cand_config.kv_cache_dtype = a.engine.config.kv_cache_dtype;
  cand_config.kv_quant = a.engine.config.kv_quant;
  LLM reference(ref_config);
  LLM candidate(cand_config);
  const std::vector<int32_t> ids = reference.encode(buf.str(), true);
  const int32_t window = a.window > 0 ? a.window : reference.config().max_model_len;
  const KvEvalResult r = evaluate_kv(reference, candidate, ids, window);
  if (a.json) {
    std::cout << nlohmann::json{{"kv_cache_dtype", candidate.stats().kv_cache_dtype},
                                {"reference_kv_cache_dtype", reference.stats().kv_cache_dtype},
                                {"ppl_ref", r.ppl_ref},
                                {"ppl", r.ppl},
                                {"kl_mean", r.kl_mean},
                                {"kl_max", r.kl_max},
                                {"top1_agreement", r.top1_agreement},
                                {"tokens", r.tokens},
                                {"window", window}}
                     .dump()
              << "\n";
    return;
  }
  std::printf("tokens %lld (windows of %d)\n", (long long)r.tokens, window);
  std::printf("perplexity %s: %.4f   %s: %.4f\n", reference.stats().kv_cache_dtype.c_str(),
              r.ppl_ref, candidate.stats().kv_cache_dtype.c_str(), r.ppl);
  std::printf("KL divergence mean %.3g  max %.3g\n", r.kl_mean, r.kl_max);
  std::printf("top-1 agreement %.2f%%\n", 100.0 * r.top1_agreement);
}

}  // namespace

void register_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "perplexity, KL and top-1 agreement of a KV cache dtype against the model dtype");
  add_engine_options(*cmd, args->engine);
  cmd->add_option("--text", args->text_file, "text file to evaluate on")->required();
  cmd->add_option("--window", args->window, "tokens per window (default: max model length)")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_flag("--json", args->json, "print ppl_ref, ppl, kl_mean, kl_max, top1_agreement, tokens");
  cmd->callback([args] {
    require_model(args->engine);
    run_eval(*args);
  });
}

}  // namespace nanovllm::cli
