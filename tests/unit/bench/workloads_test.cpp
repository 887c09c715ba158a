#include "bench/workloads.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace nanovllm::bench {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

TEST(Workloads, W1ReproducesNanoVllmBenchSeed0TokenForToken) {
  const auto ref = read_json(std::string(NANOVLLM_SHARED_DIR) + "/bench/nanovllm-bench-seed0.json");
  const Workload w = make_workload(WorkloadId::W1);
  const auto& prompts = ref.at("prompt_token_ids");
  const auto& max_tokens = ref.at("max_tokens");
  ASSERT_EQ(w.prompt_token_ids.size(), prompts.size());
  ASSERT_EQ(w.max_tokens.size(), max_tokens.size());
  for (size_t s = 0; s < prompts.size(); ++s) {
    ASSERT_EQ(w.prompt_token_ids[s], prompts[s].get<std::vector<int32_t>>()) << "prompt " << s;
    ASSERT_EQ(w.max_tokens[s], max_tokens[s].get<int32_t>()) << "max_tokens " << s;
  }
  EXPECT_EQ(w.num_input_tokens(), ref.at("num_input_tokens").get<int64_t>());
  EXPECT_EQ(w.num_output_tokens(), ref.at("num_output_tokens").get<int64_t>());
  EXPECT_EQ(w.num_input_tokens(), 142827);
  EXPECT_EQ(w.num_output_tokens(), 133966);
  EXPECT_FLOAT_EQ(w.temperature, 0.6f);
  EXPECT_TRUE(w.ignore_eos);
  EXPECT_EQ(w.max_model_len, 4096);
}

TEST(Workloads, DumpWritesTheSeed0FileShape) {
  const std::string path = std::string(NANOVLLM_BINARY_DIR) + "/workloads_test_dump.json";
  dump_workload(make_workload(WorkloadId::W1), path);
  const auto dumped = read_json(path);
  const auto ref = read_json(std::string(NANOVLLM_SHARED_DIR) + "/bench/nanovllm-bench-seed0.json");
  std::remove(path.c_str());
  EXPECT_EQ(dumped.at("prompt_token_ids"), ref.at("prompt_token_ids"));
  EXPECT_EQ(dumped.at("max_tokens"), ref.at("max_tokens"));
  EXPECT_EQ(dumped.at("num_input_tokens"), ref.at("num_input_tokens"));
  EXPECT_EQ(dumped.at("num_output_tokens"), ref.at("num_output_tokens"));
  EXPECT_TRUE(dumped.at("source").is_string());
}

TEST(Workloads, NumPromptsKeepsAPrefixOfTheFullWorkload) {
  const Workload full = make_workload(WorkloadId::W1);
  const Workload small = make_workload(WorkloadId::W1, 3);
  ASSERT_EQ(small.prompt_token_ids.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(small.prompt_token_ids[s], full.prompt_token_ids[s]);
    EXPECT_EQ(small.max_tokens[s], full.max_tokens[s]);
  }
}

TEST(Workloads, UniformShapesMatchBenchMd) {
  struct Case { WorkloadId id; size_t n; size_t in; int32_t out; };
  for (const Case c : {Case{WorkloadId::W2, 256, 512, 256}, Case{WorkloadId::W3, 32, 4096, 256},
                       Case{WorkloadId::W4, 1, 512, 128}}) {
    const Workload w = make_workload(c.id);
    ASSERT_EQ(w.prompt_token_ids.size(), c.n);
    for (size_t s = 0; s < c.n; ++s) {
      ASSERT_EQ(w.prompt_token_ids[s].size(), c.in);
      ASSERT_EQ(w.max_tokens[s], c.out);
      for (int32_t t : w.prompt_token_ids[s]) ASSERT_TRUE(t >= 0 && t <= 10000);
    }
    EXPECT_GE(w.max_model_len, static_cast<int32_t>(c.in) + c.out);
    EXPECT_TRUE(w.ignore_eos);
  }
  // Distinct prompts: a random workload must not turn into a prefix-cache benchmark.
  const Workload w2 = make_workload(WorkloadId::W2);
  EXPECT_NE(w2.prompt_token_ids[0], w2.prompt_token_ids[1]);
}

TEST(Workloads, UniformPromptTokensFollowPythonRandom) {
  // python3 -c "import random; random.seed(0); print([random.randint(0,10000) for _ in range(5)])"
  const Workload w = make_uniform_workload(WorkloadId::W4, 1, 5, 1, 0);
  EXPECT_EQ(w.prompt_token_ids[0], (std::vector<int32_t>{6311, 6890, 663, 4242, 8376}));
}

TEST(Workloads, ParseAndErrors) {
  EXPECT_EQ(parse_workload_id("W3"), WorkloadId::W3);
  EXPECT_EQ(parse_workload_id("w5"), WorkloadId::W5);
  EXPECT_FALSE(parse_workload_id("W6").has_value());
  EXPECT_FALSE(parse_workload_id("W").has_value());
  EXPECT_THROW(make_workload(WorkloadId::W5), Error);
  EXPECT_THROW(make_uniform_workload(WorkloadId::W2, 0, 5, 5), Error);
  EXPECT_THROW(dump_workload(make_workload(WorkloadId::W4), "/nonexistent-dir/x.json"), Error);
}

}  // namespace
}  // namespace nanovllm::bench
