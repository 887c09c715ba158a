#include <gtest/gtest.h>

#include "server/server_metrics.h"

namespace nanovllm::server {
namespace {

TEST(ServerMetrics, HistogramBucketsAreCumulativeWithInfinityLast) {
  LatencyHistogram h({0.1, 1.0});
  for (double s : {0.05, 0.1, 0.5, 3.0}) h.observe(s);  // 0.1 falls in le="0.1" (upper bound inclusive)
  EXPECT_EQ(h.counts, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(h.count, 4);
  EXPECT_NEAR(h.sum, 3.65, 1e-12);
  ServerMetrics m;
  m.e2e_request_latency = h;
  m.engine.num_kv_blocks = 10;
  m.engine.num_free_kv_blocks = 4;
  m.finished_length = 5;
  const std::string text = prometheus_text(m, "a\"b");
  EXPECT_NE(text.find("nanovllm:e2e_request_latency_seconds_bucket{model_name=\"a\\\"b\",le=\"0.1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("nanovllm:e2e_request_latency_seconds_bucket{model_name=\"a\\\"b\",le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("nanovllm:e2e_request_latency_seconds_bucket{model_name=\"a\\\"b\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("nanovllm:e2e_request_latency_seconds_count{model_name=\"a\\\"b\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("nanovllm:kv_cache_usage_perc{model_name=\"a\\\"b\"} 0.6\n"), std::string::npos);
  EXPECT_NE(text.find("finished_reason=\"length\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE nanovllm:time_to_first_token_seconds histogram\n"), std::string::npos);
}

}  // namespace
}  // namespace nanovllm::server
