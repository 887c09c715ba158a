#pragma once
// What GET /metrics reports, in Prometheus' text format with vLLM's metric names under the
// nanovllm: prefix: the engine's state after its latest step and the server's request counters.
#include <cstdint>
#include <string>
#include <vector>

#include "nanovllm/llm.h"

namespace nanovllm::server {

// A Prometheus histogram: counts per upper bound (seconds), their sum and count.
struct LatencyHistogram {
  std::vector<double> bounds;     // ascending upper bounds; +Inf is implied
  std::vector<int64_t> counts;    // one per bound, then +Inf (not cumulative)
  double sum = 0;
  int64_t count = 0;
  explicit LatencyHistogram(std::vector<double> upper_bounds = {});
  void observe(double seconds);
};

struct ServerMetrics {
  ServerMetrics();
  EngineStats engine;               // after the engine's latest step
  // From a request's arrival at the engine thread: to its first token, to its end; and its time
  // per output token after the first (vLLM's time_to_first_token / e2e_request_latency /
  // time_per_output_token, here one sample a request).
  LatencyHistogram time_to_first_token, e2e_request_latency, time_per_output_token;
  int64_t finished_stop = 0;        // requests (choices) that ended on EOS, a stop id or string
  int64_t finished_length = 0;      // ... on max_tokens or the context length
  int64_t aborted = 0;              // clients that went away mid-request
  int64_t failed = 0;               // refused at admission (400) or lost to an engine error
};

std::string prometheus_text(const ServerMetrics& m, const std::string& model_name);

}  // namespace nanovllm::server
