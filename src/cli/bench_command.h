#pragma once
#include <CLI/CLI.hpp>

namespace nanovllm::cli {
// `nanovllm bench`: the workloads of BENCH.md, one run per KV dtype in one process, a side-by-side
// table with ratios, and --json with everything.
void register_bench_command(CLI::App& app);
}
