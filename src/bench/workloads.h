#pragma once
// The workloads of ../shared/bench/BENCH.md. W1 is nano-vllm's bench.py token for token; W2-W4
// are uniform shapes with seeded random prompt tokens; W5 is a capacity question (no requests).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanovllm::bench {

enum class WorkloadId { W1, W2, W3, W4, W5 };

std::optional<WorkloadId> parse_workload_id(std::string_view name);  // "W1".."W5" (or "w1")
std::string_view workload_name(WorkloadId id);

struct Workload {
  WorkloadId id = WorkloadId::W1;
  std::string description;
  std::vector<std::vector<int32_t>> prompt_token_ids;  // [num_seqs][prompt_len]
  std::vector<int32_t> max_tokens;                     // [num_seqs]
  float temperature = 0.6f;
  bool ignore_eos = true;
  int32_t max_model_len = 4096;

  int64_t num_input_tokens() const;
  int64_t num_output_tokens() const;
  std::vector<int64_t> input_lengths() const;
  std::vector<int64_t> output_lengths() const;
};

// W5: how many sequences of seq_len tokens fit in budget_bytes of KV cache.
struct CapacitySpec {
  int64_t budget_bytes = int64_t{8} << 30;  // 8 GiB, the seed's 8 GB GPU
  int64_t seq_len = 2048;
};

// nano-vllm bench.py: random.seed(seed); num_seqs prompts of randint(100, 1024) tokens each
// randint(0, 10000); then max_tokens = randint(100, 1024) per sequence (after all prompts).
Workload make_nanovllm_bench_workload(int64_t seed = 0, int32_t num_seqs = 256);
// num_seqs x prompt_len tokens (randint(0, 10000) from PythonRandom(seed)) x max_tokens each.
Workload make_uniform_workload(WorkloadId id, int32_t num_seqs, int32_t prompt_len, int32_t max_tokens,
                               int64_t seed = 0);
// The workload as BENCH.md defines it. num_prompts > 0 keeps only the first num_prompts sequences
// of the full workload (a quick CPU run). W5 has no requests: throws; use CapacitySpec.
Workload make_workload(WorkloadId id, int32_t num_prompts = -1);

// The shape of ../shared/bench/nanovllm-bench-seed0.json: source, num_input_tokens,
// num_output_tokens, prompt_token_ids, max_tokens.
nlohmann::json workload_to_json(const Workload& w);
void dump_workload(const Workload& w, const std::string& path);  // throws Error naming the file

}  // namespace nanovllm::bench
