#include "bench/bench_report.h"

#include <gtest/gtest.h>

#include <sstream>

namespace nanovllm::bench {
namespace {

BenchResult result(const char* dtype, double tok_per_s, int64_t blocks) {
  BenchResult r;
  r.kv_cache_dtype = dtype;
  r.device = "cpu";
  r.device_name = "cpu";
  r.num_seqs = 3;
  r.output_tokens = 300;
  r.wall_s = 300 / tok_per_s;
  r.output_tok_per_s = tok_per_s;
  r.floor.floor_s = 0.5;
  r.roofline_efficiency = r.floor.floor_s / r.wall_s;
  r.num_kv_blocks = blocks;
  r.cached_prompt_tokens = 25;
  r.prompt_tokens = 75;
  r.prefix_cache_hit_rate = 0.25;
  r.decode_s = 0.8 * r.wall_s;
  return r;
}

BenchReport throughput_report() {
  BenchReport rep;
  rep.engine_commit = "abc1234";
  rep.model = "preset:qwen3-tiny";
  rep.workload = "W2";
  rep.results = {result("bf16", 1000.0, 100), result("int8", 1500.0, 194)};
  return rep;
}

TEST(BenchReport, TableShowsRatiosAgainstTheFirstDtype) {
  std::ostringstream out;
  print_bench_table(throughput_report(), out);
  const std::string table = out.str();
  EXPECT_NE(table.find("abc1234"), std::string::npos);
  EXPECT_NE(table.find("1.50x"), std::string::npos) << table;  // int8 tok/s vs bf16
  EXPECT_NE(table.find("1.94x"), std::string::npos) << table;  // int8 blocks vs bf16
  EXPECT_NE(table.find("25.0%"), std::string::npos) << table;  // prefix hit rate
  EXPECT_NE(table.find("x decode s"), std::string::npos) << table;
  EXPECT_NE(table.find("0.240"), std::string::npos) << table;  // bf16 decode s: 0.8 x 0.3 s
  EXPECT_NE(table.find("0.67x"), std::string::npos) << table;  // int8 decode s vs bf16: 0.16 / 0.24
  EXPECT_EQ(table.find("ms/token"), std::string::npos);       // only W4 has it
  EXPECT_NE(table.find("commit abc1234, cpu\n"), std::string::npos) << table;
}

TEST(BenchReport, TableAndJsonNameTheGpu) {
  BenchReport rep = throughput_report();
  for (BenchResult& r : rep.results) {
    r.device = "cuda";
    r.device_name = "NVIDIA H100 80GB HBM3";
  }
  std::ostringstream out;
  print_bench_table(rep, out);
  EXPECT_NE(out.str().find("commit abc1234, cuda (NVIDIA H100 80GB HBM3)"), std::string::npos)
      << out.str();
  EXPECT_EQ(bench_report_to_json(rep).at("results")[0].at("device_name"), "NVIDIA H100 80GB HBM3");
}

TEST(BenchReport, JsonCarriesEveryResultField) {
  const auto j = bench_report_to_json(throughput_report());
  EXPECT_EQ(j.at("engine_commit"), "abc1234");
  EXPECT_EQ(j.at("workload"), "W2");
  ASSERT_EQ(j.at("results").size(), 2u);
  const auto& int8 = j.at("results")[1];
  EXPECT_EQ(int8.at("kv_cache_dtype"), "int8");
  EXPECT_DOUBLE_EQ(int8.at("output_tok_per_s").get<double>(), 1500.0);
  EXPECT_DOUBLE_EQ(int8.at("roofline_efficiency").get<double>(), 0.5 / 0.2);
  EXPECT_EQ(int8.at("num_kv_blocks"), 194);
  for (const char* key : {"wall_s", "peak_device_bytes", "preemptions", "prefix_cache_hit_rate", "roofline",
                          "kv_bytes_per_token", "device", "device_name"}) {
    EXPECT_TRUE(int8.contains(key)) << key;
  }
  EXPECT_FALSE(int8.contains("ms_per_output_token"));
  EXPECT_FALSE(j.contains("capacity_budget_bytes"));
}

TEST(BenchReport, LatencyAndCapacityColumns) {
  BenchReport w4 = throughput_report();
  w4.results[0].ms_per_output_token = 4.0;
  w4.results[1].ms_per_output_token = 3.0;
  std::ostringstream out;
  print_bench_table(w4, out);
  EXPECT_NE(out.str().find("0.75x"), std::string::npos) << out.str();

  BenchReport w5;
  w5.workload = "W5";
  w5.capacity_budget_bytes = int64_t{8} << 30;
  w5.capacity_seq_len = 2048;
  w5.results = {result("bf16", 0, 0), result("int8", 0, 0)};
  w5.results[0].capacity_sequences = 36;
  w5.results[1].capacity_sequences = 70;
  std::ostringstream cap;
  print_bench_table(w5, cap);
  EXPECT_NE(cap.str().find("1.94x"), std::string::npos) << cap.str();
  EXPECT_EQ(bench_report_to_json(w5).at("results")[1].at("capacity_sequences"), 70);
}

TEST(BenchResult, MedianRunIsTheMiddleWallAndTheLowerMiddleForAnEvenCount) {
  EXPECT_EQ(median_run_index({}), -1);
  EXPECT_EQ(median_run_index({{2.0}}), 0);
  EXPECT_EQ(median_run_index({{3.0}, {1.0}, {2.0}}), 2);
  EXPECT_EQ(median_run_index({{4.0}, {1.0}, {3.0}, {2.0}}), 3);  // walls 1 2 3 4: the 2
  EXPECT_EQ(median_run_index({{1.0}, {1.0}, {1.0}}), 1);         // ties keep run order
}

TEST(BenchReport, RepeatedRunsShowTheirSpreadAndEveryRunInTheJson) {
  BenchReport rep = throughput_report();
  rep.results[1].runs = {{0.21, 1428.6, 0.02, 0.17, 0}, {0.20, 1500.0, 0.02, 0.16, 0},
                         {0.25, 1200.0, 0.03, 0.20, 0}};
  std::ostringstream out;
  print_bench_table(rep, out);
  EXPECT_NE(out.str().find("int8: 3 runs, wall s 0.200 / 0.200 / 0.250 (min / median / max), decode s "
                           "0.160 - 0.200"),
            std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("bf16: "), std::string::npos) << "one run: no spread line";
  const auto json = bench_report_to_json(rep);
  EXPECT_FALSE(json.at("results")[0].contains("runs"));
  ASSERT_EQ(json.at("results")[1].at("runs").size(), 3u);
  EXPECT_DOUBLE_EQ(json.at("results")[1].at("runs")[2].at("wall_s"), 0.25);
  EXPECT_EQ(json.at("results")[1].at("runs")[2].at("cached_prompt_tokens"), 0);
}

}  // namespace
}  // namespace nanovllm::bench
