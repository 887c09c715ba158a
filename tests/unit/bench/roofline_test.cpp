#include "bench/roofline.h"

#include <gtest/gtest.h>

#include <vector>

#include "bench/workloads.h"
#include "core/error.h"

namespace nanovllm::bench {
namespace {

// Relative tolerance: the same double arithmetic as roofline.py, summed in the same order except
// for a few integer products that Python keeps exact.
void expect_close(double actual, double expected, double rel = 1e-12) {
  EXPECT_NEAR(actual, expected, std::abs(expected) * rel) << "expected " << expected;
}

RooflineFloor w1_floor(KvDType dtype) {
  const Workload w = make_workload(WorkloadId::W1);
  const auto in = w.input_lengths();
  const auto out = w.output_lengths();
  return roofline_floor(*roofline_preset("qwen3-0.6b"), dtype, in, out);
}

RooflineFloor uniform_floor(const char* preset, KvDType dtype, int64_t n, int64_t in, int64_t out) {
  const std::vector<int64_t> inputs(n, in), outputs(n, out);
  return roofline_floor(*roofline_preset(preset), dtype, inputs, outputs);
}

TEST(Roofline, W1MatchesRooflinePy) {
  // cd ../shared/bench && python3 -c "import json,roofline as r; m=r.model_numbers(r.PRESETS['qwen3-0.6b']);
  //   w=json.load(open('nanovllm-bench-seed0.json')); I=[len(x) for x in w['prompt_token_ids']];
  //   O=w['max_tokens']; f=r.floor(m,'bf16',I,O,4.3e12,790e12); print(repr(f['floor_s']), ...)"
  const RooflineFloor bf16 = w1_floor(KvDType::BF16);
  expect_close(bf16.kv_bytes_per_token, 114688.0);
  expect_close(bf16.kv_read_s, 3.2256141626344186);
  expect_close(bf16.matmul_s, 0.41085458337636455);
  expect_close(bf16.floor_s, 3.9277061539214806);
  expect_close(bf16.floor_output_tok_per_s, 34107.94869831246);
  EXPECT_EQ(bf16.output_tokens, 133966);

  const RooflineFloor int8 = w1_floor(KvDType::INT8);
  expect_close(int8.kv_bytes_per_token, 59136.0);
  expect_close(int8.kv_read_s, 1.663207302608372);
  expect_close(int8.floor_s, 2.3617233858172946);
  expect_close(int8.floor_output_tok_per_s, 56723.83175967914);

  const RooflineFloor int4 = w1_floor(KvDType::INT4);
  expect_close(int4.kv_bytes_per_token, 30464.0);
  expect_close(int4.kv_read_s, 0.8568037619497675);
  expect_close(int4.floor_s, 1.5534742151828764);
  expect_close(int4.floor_output_tok_per_s, 86236.38467293736);

  // fp8 is priced as int8 by roofline.py.
  expect_close(w1_floor(KvDType::FP8_E4M3).floor_s, int8.floor_s);
}

TEST(Roofline, UniformMatchesRooflinePy) {
  // python3 -c "...; print(repr(r.floor(m,'bf16',[512]*256,[256]*256,4.3e12,790e12)['floor_s']))"
  expect_close(uniform_floor("qwen3-0.6b", KvDType::BF16, 256, 512, 256).floor_s, 1.4610544491569737);
  expect_close(uniform_floor("qwen3-0.6b", KvDType::INT8, 256, 512, 256).floor_s, 0.9170727287476714);
  // A non-tied preset and uneven lengths:
  // python3 -c "import roofline as r; print(r.floor(r.model_numbers(r.PRESETS['qwen3-8b']),'int8',[7,33],[5,2],4.3e12,790e12))"
  const std::vector<int64_t> in{7, 33}, out{5, 2};
  const RooflineFloor f = roofline_floor(*roofline_preset("qwen3-8b"), KvDType::INT8, in, out);
  expect_close(f.kv_bytes_per_token, 76032.0);
  expect_close(f.kv_read_s, 1.9803683720930234e-06);
  expect_close(f.kv_write_s, 8.310474418604651e-07);
  expect_close(f.weight_read_s, 0.01760022623255814);
  expect_close(f.matmul_s, 0.0008411465131746835);
  expect_close(f.floor_s, 0.01844418416154678);
  expect_close(f.floor_output_tok_per_s, 379.5234280187843);
}

TEST(Roofline, ReproducesBenchMdFloorTable) {
  // BENCH.md: W1 3.93 s (34.1k) / 2.36 s (56.7k) / 1.55 s (86.2k); W2 44.9k / 71.5k / 103k;
  // W3 6.6k / 10.3k.
  EXPECT_NEAR(w1_floor(KvDType::BF16).floor_s, 3.93, 0.005);
  EXPECT_NEAR(w1_floor(KvDType::INT8).floor_s, 2.36, 0.005);
  EXPECT_NEAR(w1_floor(KvDType::INT4).floor_s, 1.55, 0.005);
  EXPECT_NEAR(w1_floor(KvDType::BF16).floor_output_tok_per_s, 34.1e3, 50);
  EXPECT_NEAR(w1_floor(KvDType::INT8).floor_output_tok_per_s, 56.7e3, 50);
  EXPECT_NEAR(w1_floor(KvDType::INT4).floor_output_tok_per_s, 86.2e3, 50);
  EXPECT_NEAR(uniform_floor("qwen3-0.6b", KvDType::BF16, 256, 512, 256).floor_output_tok_per_s, 44.9e3, 50);
  EXPECT_NEAR(uniform_floor("qwen3-0.6b", KvDType::INT8, 256, 512, 256).floor_output_tok_per_s, 71.5e3, 50);
  EXPECT_NEAR(uniform_floor("qwen3-0.6b", KvDType::INT4, 256, 512, 256).floor_output_tok_per_s, 103e3, 500);
  EXPECT_NEAR(uniform_floor("qwen3-0.6b", KvDType::BF16, 32, 4096, 256).floor_output_tok_per_s, 6.6e3, 50);
  EXPECT_NEAR(uniform_floor("qwen3-0.6b", KvDType::INT8, 32, 4096, 256).floor_output_tok_per_s, 10.3e3, 50);
}

TEST(Roofline, CeilingsScaleTheFloor) {
  const std::vector<int64_t> in{100, 300}, out{40, 9};
  const auto cfg = *roofline_preset("qwen3-0.6b");
  const RooflineFloor base = roofline_floor(cfg, KvDType::BF16, in, out);
  const RooflineFloor twice = roofline_floor(cfg, KvDType::BF16, in, out, {8.6e12, 1580e12});
  expect_close(twice.floor_s, base.floor_s / 2);
}

TEST(Roofline, BadInputThrows) {
  const auto cfg = *roofline_preset("qwen3-0.6b");
  const std::vector<int64_t> two{1, 2}, one{1};
  EXPECT_THROW(roofline_floor(cfg, KvDType::BF16, two, one), Error);
  EXPECT_THROW(roofline_floor(RooflineModelConfig{}, KvDType::BF16, one, one), Error);
  EXPECT_FALSE(roofline_preset("llama-70b").has_value());
}

}  // namespace
}  // namespace nanovllm::bench
