#include "bench/workloads.h"

#include <algorithm>
#include <fstream>
#include <numeric>

#include "bench/python_random.h"
#include "core/error.h"

namespace nanovllm::bench {

std::optional<WorkloadId> parse_workload_id(std::string_view name) {
  if (name.size() != 2 || (name[0] != 'W' && name[0] != 'w')) return std::nullopt;
  switch (name[1]) {
    case '1': return WorkloadId::W1;
    case '2': return WorkloadId::W2;
    case '3': return WorkloadId::W3;
    case '4': return WorkloadId::W4;
    case '5': return WorkloadId::W5;
    default: return std::nullopt;
  }
}

std::string_view workload_name(WorkloadId id) {
  switch (id) {
    case WorkloadId::W1: return "W1";
    case WorkloadId::W2: return "W2";
    case WorkloadId::W3: return "W3";
    case WorkloadId::W4: return "W4";
    case WorkloadId::W5: return "W5";
  }
  return "?";
}

int64_t Workload::num_input_tokens() const {
  int64_t n = 0;
  for (const auto& p : prompt_token_ids) n += static_cast<int64_t>(p.size());
  return n;
}

int64_t Workload::num_output_tokens() const {
  return std::accumulate(max_tokens.begin(), max_tokens.end(), int64_t{0});
}

std::vector<int64_t> Workload::input_lengths() const {
  std::vector<int64_t> out;
  out.reserve(prompt_token_ids.size());
  for (const auto& p : prompt_token_ids) out.push_back(static_cast<int64_t>(p.size()));
  return out;
}

std::vector<int64_t> Workload::output_lengths() const {
  return std::vector<int64_t>(max_tokens.begin(), max_tokens.end());
}

Workload make_nanovllm_bench_workload(int64_t seed, int32_t num_seqs) {
  NANOVLLM_CHECK(num_seqs > 0, "W1: number of sequences must be positive, got ", num_seqs);
  PythonRandom rng(seed);
  Workload w;
  w.id = WorkloadId::W1;
  w.description =
      "nano-vllm bench.py protocol: random.seed(" + std::to_string(seed) + "); " +
      std::to_string(num_seqs) +
      " prompts of randint(100,1024) tokens, each randint(0,10000); then max_tokens=randint(100,1024) "
      "per sequence; temperature=0.6, ignore_eos=True, max_model_len=4096";
  // Order matters: bench.py draws every prompt first, then every max_tokens.
  w.prompt_token_ids.resize(num_seqs);
  for (auto& prompt : w.prompt_token_ids) {
    const int64_t len = rng.randint(100, 1024);
    prompt.resize(len);
    for (auto& tok : prompt) tok = static_cast<int32_t>(rng.randint(0, 10000));
  }
  w.max_tokens.resize(num_seqs);
  for (auto& m : w.max_tokens) m = static_cast<int32_t>(rng.randint(100, 1024));
  w.temperature = 0.6f;
  w.ignore_eos = true;
  w.max_model_len = 4096;
  return w;
}

Workload make_uniform_workload(WorkloadId id, int32_t num_seqs, int32_t prompt_len, int32_t max_tokens,
                               int64_t seed) {
  NANOVLLM_CHECK(num_seqs > 0 && prompt_len > 0 && max_tokens > 0, workload_name(id),
                 ": sequences, prompt length and max_tokens must be positive, got ", num_seqs, " x ",
                 prompt_len, " x ", max_tokens);
  PythonRandom rng(seed);
  Workload w;
  w.id = id;
  w.description = std::string(workload_name(id)) + ": " + std::to_string(num_seqs) + " sequences x " +
                  std::to_string(prompt_len) + " prompt tokens (randint(0,10000), seed " +
                  std::to_string(seed) + ") x " + std::to_string(max_tokens) +
                  " output tokens; temperature=0.6, ignore_eos=True";
  w.prompt_token_ids.assign(num_seqs, std::vector<int32_t>(prompt_len));
  for (auto& prompt : w.prompt_token_ids)
    for (auto& tok : prompt) tok = static_cast<int32_t>(rng.randint(0, 10000));
  w.max_tokens.assign(num_seqs, max_tokens);
  w.max_model_len = std::max(4096, prompt_len + max_tokens);
  return w;
}

Workload make_workload(WorkloadId id, int32_t num_prompts) {
  Workload w;
  switch (id) {
    case WorkloadId::W1: w = make_nanovllm_bench_workload(0, 256); break;
    case WorkloadId::W2: w = make_uniform_workload(id, 256, 512, 256); break;
    case WorkloadId::W3: w = make_uniform_workload(id, 32, 4096, 256); break;
    case WorkloadId::W4: w = make_uniform_workload(id, 1, 512, 128); break;
    case WorkloadId::W5:
      throw_error("W5 is a capacity question with no requests to generate (see CapacitySpec)");
  }
  if (num_prompts > 0 && num_prompts < static_cast<int32_t>(w.max_tokens.size())) {
    w.prompt_token_ids.resize(num_prompts);
    w.max_tokens.resize(num_prompts);
    w.description += " (first " + std::to_string(num_prompts) + " sequences only)";
  }
  return w;
}

nlohmann::json workload_to_json(const Workload& w) {
  return nlohmann::json{{"source", w.description},
                        {"num_input_tokens", w.num_input_tokens()},
                        {"num_output_tokens", w.num_output_tokens()},
                        {"prompt_token_ids", w.prompt_token_ids},
                        {"max_tokens", w.max_tokens}};
}

void dump_workload(const Workload& w, const std::string& path) {
  std::ofstream out(path);
  NANOVLLM_CHECK(out.good(), "--dump-workload: cannot open '", path, "' for writing");
  out << workload_to_json(w).dump() << "\n";
  NANOVLLM_CHECK(out.good(), "--dump-workload: writing '", path, "' failed");
}

}  // namespace nanovllm::bench
