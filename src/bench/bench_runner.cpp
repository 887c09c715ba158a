#include "bench/bench_runner.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <ostream>

#include "bench/python_random.h"
#include "cache/kv_sizing.h"
#include "core/error.h"
#include "model/model_source.h"
#include "nanovllm/llm.h"
#include "nanovllm_git_commit.h"  // generated at build time (cmake/git_commit.cmake)

namespace nanovllm::bench {
namespace {

using Clock = std::chrono::steady_clock;

RooflineModelConfig roofline_config(const ModelConfig& c) {
  return {c.vocab_size, c.hidden_size,         c.intermediate_size,  c.num_hidden_layers,
          c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.tie_word_embeddings};
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Seeded random prompt of `len` ids in [0, 10000], distinct from the workload's prompts (different
// seed) so it shares no prefix-cache block with them.
std::vector<int32_t> random_prompt(int64_t seed, int32_t len) {
  PythonRandom rng(seed);
  std::vector<int32_t> ids(len);
  for (auto& t : ids) t = static_cast<int32_t>(rng.randint(0, 10000));
  return ids;
}

// The workload's ids are drawn from [0, 10000]; a model with a smaller vocabulary (llama-tiny)
// gets them modulo its vocab_size, which keeps lengths and therefore the roofline the same.
void fit_to_vocab(std::vector<int32_t>& ids, int32_t vocab_size) {
  if (vocab_size > 10000) return;
  for (auto& t : ids) t %= vocab_size;
}

struct Requests {
  std::vector<Prompt> prompts;
  std::vector<SamplingParams> params;
};

Requests to_requests(const Workload& w, int32_t vocab_size) {
  Requests r;
  for (size_t s = 0; s < w.prompt_token_ids.size(); ++s) {
    std::vector<int32_t> ids = w.prompt_token_ids[s];
    fit_to_vocab(ids, vocab_size);
    r.prompts.emplace_back(std::move(ids));
    SamplingParams p;
    p.temperature = w.temperature;
    p.ignore_eos = w.ignore_eos;
    p.max_tokens = w.max_tokens[s];
    r.params.push_back(p);
  }
  return r;
}

struct Timed {
  double seconds = 0;
  int64_t generated = 0;
};

Timed timed_generate(LLM& llm, const Requests& r) {
  const auto start = Clock::now();
  const auto outputs = llm.generate(r.prompts, r.params);
  Timed t;
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& o : outputs) t.generated += static_cast<int64_t>(o.token_ids.size());
  return t;
}

// nano-vllm's bench.py warms up with generate(["Benchmark: "], SamplingParams()): one short
// prompt, default sampling (temperature 1, max_tokens 64).
void warm_up(LLM& llm, int32_t vocab_size) {
  std::vector<int32_t> ids = random_prompt(1234, 4);
  fit_to_vocab(ids, vocab_size);
  llm.generate(std::vector<Prompt>{ids}, SamplingParams{});
}

void fill_from_stats(BenchResult& r, const EngineStats& s, KvDType requested) {
  r.kv_cache_dtype = s.kv_cache_dtype.empty() ? std::string(kv_dtype_name(requested)) : s.kv_cache_dtype;
  r.device = s.device;
  r.device_name = s.device_name;
  r.peak_device_bytes = s.peak_device_bytes;
  r.num_kv_blocks = s.num_kv_blocks;
  r.kv_block_size = s.kv_block_size;
  r.kv_bytes_per_token = s.kv_bytes_per_token;
  r.preemptions = s.preemptions;
  r.prompt_tokens = s.prompt_tokens;
  r.cached_prompt_tokens = s.cached_prompt_tokens;
  const int64_t all_prompt = s.prompt_tokens + s.cached_prompt_tokens;
  r.prefix_cache_hit_rate = all_prompt > 0 ? static_cast<double>(s.cached_prompt_tokens) / all_prompt : 0.0;
  r.prefill_s = s.prefill_seconds;
  r.decode_s = s.decode_seconds;
}

// The result of one timed run from the engine's stats after it.
BenchResult throughput_result(const EngineStats& stats, KvDType dtype, const Workload& w,
                              const RooflineModelConfig& roof, const BenchOptions& o, const Timed& t) {
  BenchResult r;
  fill_from_stats(r, stats, dtype);
  r.num_seqs = static_cast<int64_t>(w.prompt_token_ids.size());
  r.input_tokens = w.num_input_tokens();
  r.output_tokens = t.generated;
  r.wall_s = t.seconds;
  r.output_tok_per_s = t.seconds > 0 ? t.generated / t.seconds : 0.0;
  r.floor = roofline_floor(roof, dtype, w.input_lengths(), w.output_lengths(), o.ceilings);
  r.roofline_efficiency = t.seconds > 0 ? r.floor.floor_s / t.seconds : 0.0;
  const int64_t decode_tokens = t.generated - r.num_seqs;
  if (w.id == WorkloadId::W4 && decode_tokens > 0) {
    r.ms_per_output_token = 1e3 * r.decode_s / static_cast<double>(decode_tokens);
  }
  return r;
}

// W1-W4: timed generate()s of every request (BenchOptions::repeat). W4's ms per output token is the engine's decode
// time per decode step (each sequence's first token comes from its prefill step), the number
// llama.cpp reports as eval time per token. (It was wall minus a separate 1-token run, which
// also subtracted that run's first-use costs, e.g. new GEMM shapes, and misstated the latency.)
BenchResult run_throughput(LLM& llm, KvDType dtype, const Workload& w, const RooflineModelConfig& roof,
                           const BenchOptions& o, int32_t vocab_size, std::ostream& log) {
  warm_up(llm, vocab_size);
  if (w.id == WorkloadId::W4) {
    // A latency run is one prefill: warm its shapes (GEMM plans, kernel attributes) with a prompt
    // of the same length and other tokens, so the timed run neither pays first-use costs (the
    // first KV dtype measured paid ~0.1 s of them on the H200) nor hits the prefix cache.
    std::vector<int32_t> ids =
        random_prompt(4321, static_cast<int32_t>(w.prompt_token_ids[0].size()));
    fit_to_vocab(ids, vocab_size);
    SamplingParams two;
    two.max_tokens = 2;
    two.ignore_eos = true;
    llm.generate(std::vector<Prompt>{ids}, two);
  }
  const Requests requests = to_requests(w, vocab_size);
  std::vector<BenchResult> per_run;
  std::vector<RunTiming> runs;
  for (int32_t i = 0; i < std::max(1, o.repeat); ++i) {
    // No timed run may be served from the prefix cache that an earlier one filled.
    NANOVLLM_CHECK(llm.reset_prefix_cache(), "bench: the prefix cache could not be reset before run ",
                   i + 1, " (requests still hold KV blocks)");
    llm.reset_stats();
    const Timed t = timed_generate(llm, requests);
    per_run.push_back(throughput_result(llm.stats(), dtype, w, roof, o, t));
    const BenchResult& r = per_run.back();
    runs.push_back({r.wall_s, r.output_tok_per_s, r.prefill_s, r.decode_s, r.cached_prompt_tokens});
    log << "  " << r.kv_cache_dtype << ": " << t.generated << " tokens in " << t.seconds << " s\n";
  }
  BenchResult median = per_run[size_t(median_run_index(runs))];
  median.runs = std::move(runs);
  return median;
}

// W5: capacity arithmetic from the engine's own bytes/token and block size.
BenchResult run_capacity(LLM& llm, KvDType dtype, const ModelConfig& mc, const CapacitySpec& cap,
                         std::ostream& log) {
  BenchResult r;
  fill_from_stats(r, llm.stats(), dtype);
  NANOVLLM_CHECK(r.kv_bytes_per_token > 0 && r.kv_block_size > 0,
                 "W5: the engine reported no KV bytes per token / block size");
  const int64_t sized = kv_bytes_per_token(mc.num_hidden_layers, mc.num_key_value_heads, mc.head_dim, dtype);
  if (sized != r.kv_bytes_per_token) {
    log << "  warning: engine reports " << r.kv_bytes_per_token << " KV bytes/token for "
        << r.kv_cache_dtype << ", the sizing function says " << sized << "\n";
  }
  r.capacity_blocks = cap.budget_bytes / (r.kv_block_size * r.kv_bytes_per_token);
  r.capacity_sequences = *r.capacity_blocks / blocks_per_sequence(cap.seq_len, static_cast<int32_t>(r.kv_block_size));
  log << "  " << r.kv_cache_dtype << ": " << *r.capacity_sequences << " sequences of " << cap.seq_len
      << " tokens in " << cap.budget_bytes << " bytes\n";
  return r;
}

}  // namespace

std::string engine_commit() { return NANOVLLM_GIT_COMMIT; }

BenchReport run_bench(const BenchOptions& o, std::ostream& log) {
  NANOVLLM_CHECK(!o.kv_cache_dtypes.empty(), "bench: give at least one --kv-cache-dtype");
  const ModelConfig mc = open_model(o.engine.model, o.engine.preset, "dummy", o.engine.dummy_seed).config;
  std::vector<KvDType> dtypes;
  for (const auto& name : o.kv_cache_dtypes) {
    const auto d = parse_kv_dtype(name, mc.torch_dtype);
    NANOVLLM_CHECK(d.has_value(), "bench: unknown --kv-cache-dtype '", name,
                   "' (expected auto, bf16, fp16, f32, int8, fp8_e4m3, int4)");
    dtypes.push_back(*d);
  }
  const bool capacity = o.workload == WorkloadId::W5;

  BenchReport report;
  report.engine_commit = engine_commit();
  report.date_utc = utc_now_iso8601();
  report.command = o.command;
  report.model = o.engine.model.empty() ? "preset:" + o.engine.preset : o.engine.model;
  // A preset without a model folder always runs on dummy weights.
  report.load_format = o.engine.model.empty() ? "dummy" : o.engine.load_format;
  report.workload = std::string(workload_name(o.workload));
  report.ceilings = o.ceilings;

  Workload w;
  if (capacity) {
    report.workload_description = "W5: " + std::to_string(o.capacity.seq_len) + "-token sequences resident in " +
                                  std::to_string(o.capacity.budget_bytes) + " bytes of KV cache";
    report.capacity_budget_bytes = o.capacity.budget_bytes;
    report.capacity_seq_len = o.capacity.seq_len;
  } else {
    w = make_workload(o.workload, o.num_prompts);
    report.workload_description = w.description;
    if (mc.vocab_size <= 10000) {
      report.workload_description += " (token ids modulo vocab_size " + std::to_string(mc.vocab_size) + ")";
    }
  }
  const RooflineModelConfig roof = roofline_config(mc);

  for (size_t i = 0; i < dtypes.size(); ++i) {
    Config cfg = o.engine;
    cfg.kv_cache_dtype = o.kv_cache_dtypes[i];
    if (!capacity) cfg.max_model_len = w.max_model_len;
    log << "bench " << report.workload << " kv_cache_dtype=" << cfg.kv_cache_dtype << " ...\n";
    LLM llm(cfg);
    report.results.push_back(capacity ? run_capacity(llm, dtypes[i], mc, o.capacity, log)
                                      : run_throughput(llm, dtypes[i], w, roof, o, mc.vocab_size, log));
  }
  return report;
}

}  // namespace nanovllm::bench
