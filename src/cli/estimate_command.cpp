#include "cli/estimate_command.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cache/kv_sizing.h"
#include "core/error.h"
#include "model/model_source.h"

namespace nanovllm::cli {
namespace {

struct EstimateArgs {
  std::string model, preset;
  std::vector<std::string> kv_cache_dtypes{"int8"};
  int64_t blocks = 0;
  int32_t block_size = 16;
  double memory_gib = 0;
  int64_t seq_len = 2048;
  bool json = false;
};

// "14000.0" -> "14,000.0": digits before the point grouped by three.
std::string group_thousands(std::string s) {
  const size_t start = (!s.empty() && s[0] == '-') ? 1 : 0;
  size_t point = s.find('.');
  if (point == std::string::npos) point = s.size();
  for (size_t i = point; i > start + 3; i -= 3) s.insert(i - 3, ",");
  return s;
}

// MB with two decimals, a trailing zero dropped: 14000 -> "14,000.0", 7218.75 -> "7,218.75".
std::string format_mib(double mib) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", mib);
  std::string s = buf;
  if (s.back() == '0') s.pop_back();
  return group_thousands(s);
}

std::string format_int(int64_t v) { return group_thousands(std::to_string(v)); }

void print_text(const ModelConfig& mc, const std::string& label, KvDType reference,
                const std::vector<KvMemoryEstimate>& rows, const EstimateArgs& a) {
  std::printf("model     %s: %d layers, %d KV heads, head_dim %d, model dtype %s\n", label.c_str(),
              mc.num_hidden_layers, mc.num_key_value_heads, mc.head_dim,
              std::string(kv_dtype_name(reference)).c_str());
  if (a.memory_gib > 0) {
    std::printf("cache     %g GiB in blocks of %d tokens\n", a.memory_gib, a.block_size);
  } else {
    std::printf("cache     %s blocks x %d tokens\n", format_int(a.blocks).c_str(), a.block_size);
  }
  std::printf("%-10s %12s %10s %14s %12s %8s %12s\n", "kv dtype", "bytes/token", "blocks", "total MB",
              (std::string(kv_dtype_name(reference)) + " MB").c_str(), "saving",
              ("seqs of " + std::to_string(a.seq_len)).c_str());
  for (const auto& e : rows) {
    std::printf("%-10s %12s %10s %14s %12s %7.1f%% %12s\n", std::string(kv_dtype_name(e.dtype)).c_str(),
                format_int(e.bytes_per_token).c_str(), format_int(e.num_blocks).c_str(),
                format_mib(e.total_mib).c_str(), format_mib(e.reference_total_mib).c_str(), 100 * e.saving,
                format_int(e.sequences_that_fit).c_str());
  }
  std::printf("MB = 2^20 bytes; quantized dtypes include one FP32 scale per (token, KV head) for K and V\n");
}

nlohmann::json to_json(const ModelConfig& mc, const std::string& label, KvDType reference,
                       const std::vector<KvMemoryEstimate>& rows, const EstimateArgs& a) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& e : rows) {
    results.push_back({{"kv_cache_dtype", kv_dtype_name(e.dtype)},
                       {"bytes_per_token", e.bytes_per_token},
                       {"reference_bytes_per_token", e.reference_bytes_per_token},
                       {"num_blocks", e.num_blocks},
                       {"total_bytes", e.total_bytes},
                       {"total_mb", e.total_mib},
                       {"reference_total_mb", e.reference_total_mib},
                       {"saving_percent", 100 * e.saving},
                       {"blocks_per_sequence", e.blocks_per_sequence},
                       {"sequences_that_fit", e.sequences_that_fit}});
  }
  nlohmann::json j = {{"model", label},
                      {"num_layers", mc.num_hidden_layers},
                      {"num_kv_heads", mc.num_key_value_heads},
                      {"head_dim", mc.head_dim},
                      {"model_dtype", kv_dtype_name(reference)},
                      {"block_size", a.block_size},
                      {"seq_len", a.seq_len},
                      {"results", results}};
  if (a.memory_gib > 0) j["memory_gib"] = a.memory_gib;
  return j;
}

void run_estimate(const EstimateArgs& a) {
  // open_model with "dummy" reads only the config (config.json, GGUF metadata or the preset).
  const ModelConfig mc = open_model(a.model, a.preset, "dummy", 0).config;
  const std::string label = a.model.empty() ? "preset " + a.preset : a.model;
  const KvDType reference = kv_dtype_for(mc.torch_dtype);
  const KvCacheShape shape{mc.num_hidden_layers, mc.num_key_value_heads, mc.head_dim};
  const int64_t budget = static_cast<int64_t>(std::llround(a.memory_gib * 1024.0 * 1024.0 * 1024.0));
  std::vector<KvMemoryEstimate> rows;
  for (const auto& name : a.kv_cache_dtypes) {
    const auto dtype = parse_kv_dtype(name, mc.torch_dtype);
    NANOVLLM_CHECK(dtype.has_value(), "--kv-cache-dtype: unknown dtype '", name, "'");
    rows.push_back(a.memory_gib > 0
                       ? estimate_kv_memory_for_budget(shape, *dtype, reference, budget, a.block_size, a.seq_len)
                       : estimate_kv_memory(shape, *dtype, reference, a.blocks, a.block_size, a.seq_len));
  }
  if (a.json) {
    std::cout << to_json(mc, label, reference, rows, a).dump(2) << "\n";
  } else {
    print_text(mc, label, reference, rows, a);
  }
}

}  // namespace

void register_estimate_command(CLI::App& app) {
  auto args = std::make_shared<EstimateArgs>();
  CLI::App* cmd = app.add_subcommand("estimate", "KV cache memory per dtype: bytes/token, MB, saving, capacity");
  auto* model = cmd->add_option("--model", args->model, "Hugging Face model folder or .gguf file");
  auto* preset = cmd->add_option("--preset", args->preset, "built-in model config (qwen3-0.6b, ...)");
  model->excludes(preset);
  cmd->add_option("--kv-cache-dtype", args->kv_cache_dtypes,
                  "one or more of auto, bf16, fp16, f32, int8, fp8_e4m3, int4 (default int8)")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "bf16", "fp16", "f32", "int8", "fp8", "fp8_e4m3", "int4"}));
  auto* blocks = cmd->add_option("--blocks", args->blocks, "number of KV blocks")->check(CLI::PositiveNumber);
  cmd->add_option("--block-size", args->block_size, "tokens per block (default 16)")->check(CLI::Range(1, 1 << 20));
  auto* memory = cmd->add_option("--memory", args->memory_gib, "KV budget in GiB (instead of --blocks)")
                     ->check(CLI::PositiveNumber);
  blocks->excludes(memory);
  cmd->add_option("--seq-len", args->seq_len, "sequence length for 'how many fit' (default 2048)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "print JSON instead of the table");
  cmd->callback([args] {
    if (args->model.empty() && args->preset.empty())
      throw CLI::ValidationError("--model", "give --model DIR|FILE.gguf or --preset NAME");
    if (args->blocks == 0 && args->memory_gib == 0)
      throw CLI::ValidationError("--blocks", "give --blocks N (with --block-size B) or --memory GiB");
    run_estimate(*args);
  });
}

}  // namespace nanovllm::cli
