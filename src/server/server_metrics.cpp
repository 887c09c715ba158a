#include "server/server_metrics.h"

#include <sstream>

namespace nanovllm::server {
namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

LatencyHistogram::LatencyHistogram(std::vector<double> upper_bounds)
    : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

void LatencyHistogram::observe(double seconds) {
  size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i]) ++i;
  ++counts[i];
  sum += seconds;
  ++count;
}

ServerMetrics::ServerMetrics()
    : time_to_first_token({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                           7.5, 10.0, 20.0, 40.0, 80.0}),
      e2e_request_latency({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                           120.0, 240.0, 480.0, 960.0}),
      time_per_output_token({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                             0.75, 1.0, 2.5}) {}

std::string prometheus_text(const ServerMetrics& m, const std::string& model_name) {
  const std::string label = "model_name=\"" + escaped(model_name) + "\"";
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, double value,
                    const std::string& extra_label = "") {
    out << "# HELP nanovllm:" << name << " " << help << "\n# TYPE nanovllm:" << name << " " << type
        << "\n";
    out << "nanovllm:" << name << "{" << label << extra_label << "} " << value << "\n";
  };
  const EngineStats& e = m.engine;
  metric("num_requests_running", "gauge", "Sequences in the running batch.", double(e.num_running_seqs));
  metric("num_requests_waiting", "gauge", "Sequences waiting to be scheduled.", double(e.num_waiting_seqs));
  const double usage = e.num_kv_blocks > 0 ? 1.0 - double(e.num_free_kv_blocks) / double(e.num_kv_blocks) : 0.0;
  metric("kv_cache_usage_perc", "gauge", "Fraction of KV cache blocks in use (1 = full).", usage);
  metric("num_kv_cache_blocks", "gauge", "KV cache blocks allocated.", double(e.num_kv_blocks));
  metric("prompt_tokens_total", "counter", "Prompt tokens computed (prefix-cache hits excluded).",
         double(e.prompt_tokens));
  metric("prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         double(e.cached_prompt_tokens));
  metric("generation_tokens_total", "counter", "Tokens generated.", double(e.generated_tokens));
  metric("num_preemptions_total", "counter", "Sequences preempted to free KV cache blocks.",
         double(e.preemptions));
  out << "# HELP nanovllm:request_success_total Requests finished, by reason.\n"
      << "# TYPE nanovllm:request_success_total counter\n";
  for (const auto& [reason, n] : {std::pair{"stop", m.finished_stop}, std::pair{"length", m.finished_length},
                                  std::pair{"abort", m.aborted}})
    out << "nanovllm:request_success_total{" << label << ",finished_reason=\"" << reason << "\"} " << n << "\n";
  metric("request_failure_total", "counter", "Requests refused by the engine or lost to an engine error.",
         double(m.failed));
  auto histogram = [&](const char* name, const char* help, const LatencyHistogram& h) {
    out << "# HELP nanovllm:" << name << " " << help << "\n# TYPE nanovllm:" << name << " histogram\n";
    int64_t cumulative = 0;
    for (size_t i = 0; i <= h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      out << "nanovllm:" << name << "_bucket{" << label << ",le=\"";
      if (i < h.bounds.size()) out << h.bounds[i];
      else out << "+Inf";
      out << "\"} " << cumulative << "\n";
    }
    out << "nanovllm:" << name << "_sum{" << label << "} " << h.sum << "\n";
    out << "nanovllm:" << name << "_count{" << label << "} " << h.count << "\n";
  };
  histogram("time_to_first_token_seconds", "From arrival at the engine to the first token.", m.time_to_first_token);
  histogram("e2e_request_latency_seconds", "From arrival at the engine to the last token.", m.e2e_request_latency);
  histogram("time_per_output_token_seconds", "A request's time per output token after its first.",
            m.time_per_output_token);
  return out.str();
}

}  // namespace nanovllm::server
