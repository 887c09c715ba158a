#pragma once
// Runs one BENCH.md workload through the public LLM API, once per KV dtype, in one process.
#include <iosfwd>
#include <string>
#include <vector>

#include "bench/bench_result.h"
#include "bench/workloads.h"
#include "nanovllm/config.h"

namespace nanovllm::bench {

struct BenchOptions {
  Config engine;  // everything but kv_cache_dtype, which each run sets from kv_cache_dtypes
  WorkloadId workload = WorkloadId::W1;
  std::vector<std::string> kv_cache_dtypes{"auto"};
  int32_t num_prompts = -1;  // > 0: only the first num_prompts sequences of the workload
  int32_t repeat = 1;        // timed runs per dtype (W1-W4), the prefix cache reset before each
  RooflineCeilings ceilings;
  CapacitySpec capacity;  // W5
  std::string command;    // recorded in the report
};

// Per dtype: build an LLM, one short warm-up generate (nano-vllm's bench.py does the same), then
// `repeat` times: reset the prefix cache and the stats, wall time around one generate() of all
// requests; the result is the median-wall run's, with every run's timing beside it. Progress
// lines go to `log`.
// Throws nanovllm::Error on a bad model, dtype or workload.
BenchReport run_bench(const BenchOptions& options, std::ostream& log);

// The commit the bench was built from (CMake passes `git rev-parse --short HEAD` at configure time;
// "unknown" outside a git checkout).
std::string engine_commit();

}  // namespace nanovllm::bench
