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
  return out.str();
}

}  // namespace nanovllm::server
