#pragma once
// What GET /metrics reports, in Prometheus' text format with vLLM's metric names under the
// nanovllm: prefix: the engine's state after its latest step and the server's request counters.
#include <cstdint>
#include <string>

#include "nanovllm/llm.h"

namespace nanovllm::server {

struct ServerMetrics {
  EngineStats engine;               // after the engine's latest step
  int64_t finished_stop = 0;        // requests (choices) that ended on EOS, a stop id or string
  int64_t finished_length = 0;      // ... on max_tokens or the context length
  int64_t aborted = 0;              // clients that went away mid-request
  int64_t failed = 0;               // refused at admission (400) or lost to an engine error
};

std::string prometheus_text(const ServerMetrics& m, const std::string& model_name);

}  // namespace nanovllm::server
