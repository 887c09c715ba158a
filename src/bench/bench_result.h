#pragma once
// What one benchmark invocation measured: one BenchResult per KV dtype, run one after the other in
// the same process, plus what identifies the run (commit, model, workload, command).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/roofline.h"

namespace nanovllm::bench {

// One timed generate() of a workload (bench --repeat runs several).
struct RunTiming {
  double wall_s = 0;
  double output_tok_per_s = 0;
  double prefill_s = 0;
  double decode_s = 0;
  int64_t cached_prompt_tokens = 0;  // 0 unless the prefix cache served part of the prompts
};

// The run whose wall time is the median (the lower middle one for an even count); -1 if none.
int median_run_index(const std::vector<RunTiming>& runs);

struct BenchResult {
  std::string kv_cache_dtype;  // as resolved by the engine, e.g. "bf16", "int8"
  std::string device;          // "cpu" or "cuda"
  std::string device_name;     // the GPU's name (e.g. "NVIDIA H100 80GB HBM3"), or "cpu"
  int64_t num_seqs = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;  // tokens actually generated in the timed run
  double wall_s = 0;          // one generate() of all requests, prefill included
  double output_tok_per_s = 0;
  RooflineFloor floor;             // of the workload as run, at the bench's ceilings
  double roofline_efficiency = 0;  // floor.floor_s / wall_s
  int64_t peak_device_bytes = 0;
  int64_t num_kv_blocks = 0;
  int64_t kv_block_size = 0;
  int64_t kv_bytes_per_token = 0;  // as the engine reports it
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;         // computed (cache hits excluded)
  int64_t cached_prompt_tokens = 0;  // served from the prefix cache
  double prefix_cache_hit_rate = 0;  // cached / (computed + cached)
  double prefill_s = 0;              // the engine's own split of the timed run
  double decode_s = 0;
  // W4: decode_s per decode step (every output token after each sequence's first).
  std::optional<double> ms_per_output_token;
  // Every timed run in order (W1-W4); with several, the fields above are the median-wall run's.
  std::vector<RunTiming> runs;
  // W5: whole blocks of the engine's bytes/token in the capacity budget, and sequences of
  // capacity_seq_len tokens resident at once.
  std::optional<int64_t> capacity_blocks;
  std::optional<int64_t> capacity_sequences;
};

struct BenchReport {
  std::string engine_commit;
  std::string date_utc;  // ISO 8601
  std::string command;
  std::string model;  // the folder/file or "preset:<name>"
  std::string load_format;
  std::string workload;  // "W1".."W5"
  std::string workload_description;
  RooflineCeilings ceilings;
  int64_t capacity_budget_bytes = 0;  // W5 only
  int64_t capacity_seq_len = 0;       // W5 only
  std::vector<BenchResult> results;   // in the order the dtypes were asked for
};

}  // namespace nanovllm::bench
