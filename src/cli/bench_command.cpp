#include "cli/bench_command.h"

#include <iostream>
#include <memory>

#include "bench/bench_report.h"
#include "bench/bench_runner.h"
#include "bench/workloads.h"
#include "cli/engine_options.h"
#include "core/error.h"

namespace nanovllm::cli {
namespace {

struct BenchArgs {
  EngineOptions engine;
  std::string workload;
  std::vector<std::string> kv_cache_dtypes{"auto"};
  int32_t num_prompts = -1;
  int32_t repeat = 1;
  std::string json_path;
  std::string dump_path;
  double capacity_gib = 8.0;
  int64_t capacity_seq_len = 2048;
  bench::RooflineCeilings ceilings;
};

// The invocation as a command line, to record beside the results.
std::string command_line(const CLI::App& cmd) {
  std::string line = "nanovllm bench";
  for (const CLI::Option* opt : cmd.get_options()) {
    if (opt->count() == 0 || opt->get_name() == "--help") continue;
    line += " " + opt->get_name();
    if (opt->get_type_size() == 0) continue;  // a flag
    std::string values;
    for (const auto& v : opt->results()) values += (values.empty() ? "" : ",") + v;
    line += " " + values;
  }
  return line;
}

void run(const CLI::App& cmd, const BenchArgs& a) {
  const auto id = bench::parse_workload_id(a.workload);
  NANOVLLM_CHECK(id.has_value(), "--workload: expected W1..W5, got '", a.workload, "'");
  if (!a.dump_path.empty()) {
    NANOVLLM_CHECK(*id != bench::WorkloadId::W5, "--dump-workload: W5 has no requests to dump");
    bench::dump_workload(bench::make_workload(*id, a.num_prompts), a.dump_path);
    std::cerr << "wrote " << a.workload << " to " << a.dump_path << "\n";
    return;
  }
  require_model(a.engine);
  bench::BenchOptions o;
  o.engine = a.engine.config;
  o.workload = *id;
  o.kv_cache_dtypes = a.kv_cache_dtypes;
  o.num_prompts = a.num_prompts;
  o.repeat = a.repeat;
  o.ceilings = a.ceilings;
  o.capacity.budget_bytes = static_cast<int64_t>(a.capacity_gib * 1024.0 * 1024.0 * 1024.0);
  o.capacity.seq_len = a.capacity_seq_len;
  o.command = command_line(cmd);
  const bench::BenchReport report = bench::run_bench(o, std::cerr);
  bench::print_bench_table(report, std::cout);
  if (!a.json_path.empty()) {
    bench::write_bench_json(report, a.json_path);
    std::cerr << "wrote " << a.json_path << "\n";
  }
}

}  // namespace

void register_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "run a BENCH.md workload per KV dtype: throughput, roofline efficiency, memory, side by side");
  add_engine_options(*cmd, args->engine);
  // Several dtypes run one after the other, so this option takes a list.
  cmd->remove_option(cmd->get_option("--kv-cache-dtype"));
  cmd->remove_option(cmd->get_option("--kv-quant"));
  cmd->add_option("--kv-cache-dtype", args->kv_cache_dtypes,
                  "KV dtypes to compare, in order (e.g. bf16 int8 or bf16,int8); ratios are vs the first")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "bf16", "fp16", "f32", "int8", "fp8", "fp8_e4m3", "int4"}));
  cmd->add_option("--workload", args->workload, "W1 (nano-vllm bench.py), W2 uniform, W3 long, W4 latency, W5 capacity")
      ->required()
      ->check(CLI::IsMember({"W1", "W2", "W3", "W4", "W5", "w1", "w2", "w3", "w4", "w5"}));
  cmd->add_option("--num-prompts", args->num_prompts, "keep only the first N sequences (quick CPU runs)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--repeat", args->repeat,
                  "timed runs per KV dtype (prefix cache reset before each); the table shows the "
                  "median-wall run and the spread")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--json", args->json_path, "write every result as JSON to this file");
  cmd->add_option("--dump-workload", args->dump_path,
                  "write the workload's prompt_token_ids and max_tokens as JSON and exit (no run)");
  cmd->add_option("--capacity-memory", args->capacity_gib, "W5: KV budget in GiB (default 8)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--capacity-seq-len", args->capacity_seq_len, "W5: sequence length (default 2048)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--peak-bandwidth", args->ceilings.bytes_per_second,
                  "roofline: bytes/s (default 4.3e12, H200 measured)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--peak-flops", args->ceilings.flops_per_second,
                  "roofline: FLOP/s (default 790e12, H200 BF16 measured)")
      ->check(CLI::PositiveNumber);
  cmd->callback([cmd, args] { run(*cmd, *args); });
}

}  // namespace nanovllm::cli
