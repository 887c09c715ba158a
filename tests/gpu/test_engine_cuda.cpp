// End to end on the GPU: stories260K's llama2.c greedy references, the random Qwen3 fixture's
// transformers logprobs and greedy tokens, and outputs that must not change when CUDA graphs,
// prefix caching or chunked prefill are switched on or off, or when a quantized KV cache is used
// on the GPU instead of the CPU.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "nanovllm/llm.h"
#include "scoped_env.h"

namespace nanovllm {
namespace {

const std::string kStories = std::string(NANOVLLM_SHARED_DIR) + "/models/stories260K";

struct Reference {
  std::vector<int32_t> prompt_ids, output_ids;
};

std::vector<Reference> load_references() {
  std::ifstream in(kStories + "/reference.json");
  nlohmann::json j = nlohmann::json::parse(in);
  std::vector<Reference> refs;
  for (const auto& e : j)
    refs.push_back({e["prompt_ids"].get<std::vector<int32_t>>(),
                    e["output_ids"].get<std::vector<int32_t>>()});
  return refs;
}

Config cuda_config() {
  Config c;
  c.device = "cuda";
  c.max_num_seqs = 16;
  c.max_num_batched_tokens = 2048;
  c.max_model_len = 512;
  c.num_kvcache_blocks = 2048;  // several engines share the GPU in one test
  return c;
}

SamplingParams greedy_params(size_t max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = int32_t(max_tokens);
  return p;
}

std::vector<RequestOutput> greedy(LLM& llm, const std::vector<Reference>& refs) {
  std::vector<Prompt> prompts;
  std::vector<SamplingParams> params;
  for (const auto& r : refs) {
    prompts.emplace_back(r.prompt_ids);
    params.push_back(greedy_params(r.output_ids.size()));
  }
  return llm.generate(prompts, params);
}

class CudaEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaEngine, Stories260KReproducesLlama2cGreedyOutputs) {
  const auto refs = load_references();
  LLM llm(kStories, cuda_config());
  const auto outs = greedy(llm, refs);
  ASSERT_EQ(outs.size(), refs.size());
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(outs[i].token_ids, refs[i].output_ids) << i;
}

// Logprobs read back from the GPU's logits (graph steps included) equal the CPU engine's.
TEST_F(CudaEngine, SampledLogprobsMatchTheCpu) {
  const auto refs = load_references();
  Config cpu = cuda_config();
  cpu.device = "cpu";
  LLM on_cpu(kStories, cpu), on_gpu(kStories, cuda_config());
  for (size_t i : {size_t(0), size_t(6)}) {
    SamplingParams p = greedy_params(40);
    p.logprobs = 4;
    const RequestOutput a = on_cpu.generate({Prompt(refs[i].prompt_ids)}, p)[0];
    const RequestOutput b = on_gpu.generate({Prompt(refs[i].prompt_ids)}, p)[0];
    ASSERT_EQ(a.token_ids, b.token_ids);
    ASSERT_EQ(b.logprobs.size(), b.token_ids.size());
    for (size_t t = 0; t < a.logprobs.size(); ++t) {
      EXPECT_NEAR(a.logprobs[t].logprob, b.logprobs[t].logprob, 2e-3) << t;
      ASSERT_EQ(b.logprobs[t].top.size(), 4u);
      EXPECT_EQ(b.logprobs[t].top[0].first, b.token_ids[t]) << t;
      for (size_t k = 0; k < 4; ++k) EXPECT_NEAR(a.logprobs[t].top[k].second, b.logprobs[t].top[k].second, 2e-3);
    }
  }
}

TEST_F(CudaEngine, GraphsPrefixCachingAndChunkingDoNotChangeOutputs) {
  // Long prompts (a reference prompt and the first 40 tokens of its llama2.c output) so that
  // full 16-token blocks exist to be shared; the continuation is llama2.c's next 16 tokens.
  std::vector<Reference> refs;
  for (const Reference& r : load_references()) {
    Reference longer;
    longer.prompt_ids = r.prompt_ids;
    longer.prompt_ids.insert(longer.prompt_ids.end(), r.output_ids.begin(), r.output_ids.begin() + 40);
    const size_t end = std::min<size_t>(r.output_ids.size(), 56);  // 60-step runs have 55-57
    longer.output_ids.assign(r.output_ids.begin() + 40, r.output_ids.begin() + long(end));
    refs.push_back(longer);
  }
  Config base = cuda_config();
  base.enforce_eager = true;
  base.enable_prefix_caching = false;
  LLM eager(kStories, base);
  const auto expected = greedy(eager, refs);
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(expected[i].token_ids, refs[i].output_ids) << i;

  Config fast = cuda_config();
  fast.max_num_batched_tokens = 37;  // forces chunked prefill of every prompt
  LLM graphs(kStories, fast);
  for (int round = 0; round < 2; ++round) {  // the second round hits the prefix cache
    const auto got = greedy(graphs, refs);
    for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(got[i].token_ids, expected[i].token_ids) << i;
  }
  EXPECT_GT(graphs.stats().cached_prompt_tokens, 0);
}

TEST_F(CudaEngine, QuantizedKvMatchesTheCpuReference) {
  const auto refs = load_references();
  for (const char* dtype : {"int8", "fp8_e4m3", "int4"}) {
    Config gpu = cuda_config();
    gpu.kv_cache_dtype = dtype;
    Config cpu = gpu;
    cpu.device = "cpu";
    LLM on_gpu(kStories, gpu), on_cpu(kStories, cpu);
    const auto a = greedy(on_gpu, refs), b = greedy(on_cpu, refs);
    for (size_t i = 0; i < refs.size(); ++i) {
      // Greedy paths may part after a near-tie; the first 32 tokens must agree.
      std::vector<int32_t> x(a[i].token_ids.begin(), a[i].token_ids.begin() + 32);
      std::vector<int32_t> y(b[i].token_ids.begin(), b[i].token_ids.begin() + 32);
      EXPECT_EQ(x, y) << dtype << " prompt " << i;
    }
  }
}

// tests/fixtures/qwen3_tiny: random float32 Qwen3 weights (tied head, q/k norm) saved by
// transformers with its float32 prompt logprobs and 24 greedy tokens per prompt
// (tests/fixtures/make_transformers_fixtures.py). F32 models compute in F32 on the GPU (no TF32),
// so the CPU test's 1e-3 bound on |logprob - transformers| holds here too, well inside the BF16
// tolerance the GPU would need for a BF16 model.
struct FixturePrompt {
  std::vector<int32_t> prompt_ids, greedy_ids;
  std::vector<double> prompt_logprobs, full_logprobs;  // index 0 has none (null)
};

std::vector<double> logprobs_of(const nlohmann::json& j) {
  std::vector<double> out;
  for (const auto& v : j) out.push_back(v.is_null() ? std::nan("") : v.get<double>());
  return out;
}

// max |a[i] - b[i]| over i >= 1; infinite when a value is not finite or the lengths differ.
double worst_logprob_gap(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 1; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  return worst;
}

TEST_F(CudaEngine, Qwen3FixtureMatchesTransformers) {
  const std::string dir = std::string(NANOVLLM_SOURCE_DIR) + "/tests/fixtures/qwen3_tiny";
  std::ifstream in(dir + "/reference.json");
  const nlohmann::json reference = nlohmann::json::parse(in);
  std::vector<FixturePrompt> prompts;
  for (const auto& p : reference["prompts"])
    prompts.push_back({p["prompt_ids"].get<std::vector<int32_t>>(),
                       p["greedy_ids"].get<std::vector<int32_t>>(),
                       logprobs_of(p["prompt_logprobs"]), logprobs_of(p["full_logprobs"])});
  ASSERT_GE(prompts.size(), 5u);

  LLM llm(dir, cuda_config());
  std::vector<Prompt> inputs;
  std::vector<SamplingParams> params;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const FixturePrompt& p = prompts[i];
    EXPECT_LE(worst_logprob_gap(llm.score(p.prompt_ids), p.prompt_logprobs), 1e-3) << "prompt " << i;
    std::vector<int32_t> full = p.prompt_ids;
    full.insert(full.end(), p.greedy_ids.begin(), p.greedy_ids.end());
    EXPECT_LE(worst_logprob_gap(llm.score(full), p.full_logprobs), 1e-3) << "prompt " << i;
    inputs.emplace_back(p.prompt_ids);
    params.push_back(greedy_params(p.greedy_ids.size()));
  }
  const auto outputs = llm.generate(inputs, params);  // decode kernels, CUDA graphs on
  ASSERT_EQ(outputs.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(outputs[i].token_ids, prompts[i].greedy_ids) << "prompt " << i;
}

// A BF16 model end to end with the RMSNorm weights folded into the products
// (the default; NANOVLLM_FOLD_NORMS=0 turns it off): its prompt log-probabilities must stay as close to
// the CPU's F32 run of the same weights as the unfolded BF16 run's are (folding only moves where
// the BF16 rounding happens). 200-token prompts take the folded prefill path (<= 512 rows).
TEST_F(CudaEngine, FoldedNormsStayAsCloseToTheCpuAsUnfolded) {
  Config config;
  config.preset = "qwen3-tiny";
  config.load_format = "dummy";
  config.max_model_len = 512;
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> prompts(3);
  for (auto& p : prompts)
    for (int i = 0; i < 200; ++i) p.push_back(int32_t(rng() % 150000));
  auto score_all = [&](const Config& c) {
    LLM llm(c);
    std::vector<std::vector<double>> out;
    for (const auto& p : prompts) out.push_back(llm.score(p));
    return out;
  };
  Config cpu = config;
  cpu.device = "cpu";
  const auto reference = score_all(cpu);
  Config gpu = cuda_config();
  gpu.preset = config.preset;
  gpu.load_format = config.load_format;
  std::vector<std::vector<double>> unfolded, folded;
  {
    gpu_test::ScopedEnv fold("NANOVLLM_FOLD_NORMS", "0");
    unfolded = score_all(gpu);
  }
  {
    gpu_test::ScopedEnv fold("NANOVLLM_FOLD_NORMS", "1");
    folded = score_all(gpu);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const double gap_unfolded = worst_logprob_gap(unfolded[i], reference[i]);
    const double gap_folded = worst_logprob_gap(folded[i], reference[i]);
    ASSERT_TRUE(std::isfinite(gap_unfolded)) << "prompt " << i;
    EXPECT_GT(worst_logprob_gap(folded[i], unfolded[i]), 0.0) << "prompt " << i << ": nothing folded?";
    EXPECT_LE(gap_folded, 1.5 * gap_unfolded + 1e-3)
        << "prompt " << i << ": folded " << gap_folded << ", unfolded " << gap_unfolded;
  }
}

}  // namespace
}  // namespace nanovllm
