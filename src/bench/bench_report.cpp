#include "bench/bench_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <ostream>

#include "core/error.h"

namespace nanovllm::bench {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

nlohmann::json floor_to_json(const RooflineFloor& f) {
  return {{"kv_bytes_per_token", f.kv_bytes_per_token}, {"kv_read_s", f.kv_read_s},
          {"kv_write_s", f.kv_write_s},                 {"weight_read_s", f.weight_read_s},
          {"matmul_s", f.matmul_s},                     {"floor_s", f.floor_s},
          {"output_tokens", f.output_tokens},           {"floor_output_tok_per_s", f.floor_output_tok_per_s}};
}

nlohmann::json result_to_json(const BenchResult& r) {
  nlohmann::json j = {{"kv_cache_dtype", r.kv_cache_dtype},
                      {"device", r.device},
                      {"device_name", r.device_name},
                      {"num_seqs", r.num_seqs},
                      {"input_tokens", r.input_tokens},
                      {"output_tokens", r.output_tokens},
                      {"wall_s", r.wall_s},
                      {"output_tok_per_s", r.output_tok_per_s},
                      {"roofline", floor_to_json(r.floor)},
                      {"roofline_efficiency", r.roofline_efficiency},
                      {"peak_device_bytes", r.peak_device_bytes},
                      {"num_kv_blocks", r.num_kv_blocks},
                      {"kv_block_size", r.kv_block_size},
                      {"kv_bytes_per_token", r.kv_bytes_per_token},
                      {"preemptions", r.preemptions},
                      {"prompt_tokens", r.prompt_tokens},
                      {"cached_prompt_tokens", r.cached_prompt_tokens},
                      {"prefix_cache_hit_rate", r.prefix_cache_hit_rate},
                      {"prefill_s", r.prefill_s},
                      {"decode_s", r.decode_s}};
  if (r.ms_per_output_token) j["ms_per_output_token"] = *r.ms_per_output_token;
  if (r.capacity_blocks) j["capacity_blocks"] = *r.capacity_blocks;
  if (r.capacity_sequences) j["capacity_sequences"] = *r.capacity_sequences;
  if (r.runs.size() > 1) {
    nlohmann::json runs = nlohmann::json::array();
    for (const RunTiming& t : r.runs) {
      runs.push_back({{"wall_s", t.wall_s}, {"output_tok_per_s", t.output_tok_per_s},
                      {"prefill_s", t.prefill_s}, {"decode_s", t.decode_s},
                      {"cached_prompt_tokens", t.cached_prompt_tokens}});
    }
    j["runs"] = std::move(runs);
  }
  return j;
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string ratio(double value, double first) { return first > 0 ? fmt("%.2fx", value / first) : "-"; }

void print_row(std::ostream& out, const std::vector<std::string>& cells, const std::vector<int>& widths) {
  for (size_t i = 0; i < cells.size(); ++i) {
    std::string c = cells[i];
    if (c.size() < static_cast<size_t>(widths[i])) c.insert(0, widths[i] - c.size(), ' ');
    out << (i ? "  " : "") << c;
  }
  out << "\n";
}

// With bench --repeat: each dtype's spread of wall and decode seconds over its runs.
void print_run_spread(const BenchReport& rep, std::ostream& out) {
  for (const auto& r : rep.results) {
    if (r.runs.size() < 2) continue;
    auto [wall_min, wall_max] = std::minmax_element(r.runs.begin(), r.runs.end(), [](auto& a, auto& b) {
      return a.wall_s < b.wall_s;
    });
    auto [dec_min, dec_max] = std::minmax_element(r.runs.begin(), r.runs.end(), [](auto& a, auto& b) {
      return a.decode_s < b.decode_s;
    });
    out << r.kv_cache_dtype << ": " << r.runs.size() << " runs, wall s " << fmt("%.3f", wall_min->wall_s)
        << " / " << fmt("%.3f", r.wall_s) << " / " << fmt("%.3f", wall_max->wall_s)
        << " (min / median / max), decode s " << fmt("%.3f", dec_min->decode_s) << " - "
        << fmt("%.3f", dec_max->decode_s) << "\n";
  }
}

void print_throughput(const BenchReport& rep, std::ostream& out) {
  const bool latency = !rep.results.empty() && rep.results[0].ms_per_output_token.has_value();
  std::vector<std::string> head = {"kv dtype", "out tok/s", "wall s", "floor s", "roofline", "peak MiB",
                                   "KV blocks", "B/token", "preempt", "prefix hit", "decode s"};
  if (latency) head.push_back("ms/token");
  // x decode s: the decode phase's time against the first dtype's (W3's decode-step criterion
  // when both ran the same steps)
  head.insert(head.end(), {"x tok/s", "x blocks", "x decode s"});
  if (latency) head.push_back("x ms/token");
  std::vector<int> widths;
  for (const auto& h : head) widths.push_back(std::max<int>(10, static_cast<int>(h.size())));
  print_row(out, head, widths);
  const BenchResult& first = rep.results.front();
  for (const auto& r : rep.results) {
    std::vector<std::string> row = {r.kv_cache_dtype,
                                    fmt("%.1f", r.output_tok_per_s),
                                    fmt("%.3f", r.wall_s),
                                    fmt("%.3f", r.floor.floor_s),
                                    fmt("%.1f%%", 100 * r.roofline_efficiency),
                                    fmt("%.1f", r.peak_device_bytes / kMiB),
                                    std::to_string(r.num_kv_blocks),
                                    std::to_string(r.kv_bytes_per_token),
                                    std::to_string(r.preemptions),
                                    fmt("%.1f%%", 100 * r.prefix_cache_hit_rate),
                                    fmt("%.3f", r.decode_s)};
    if (latency) row.push_back(r.ms_per_output_token ? fmt("%.3f", *r.ms_per_output_token) : "-");
    row.push_back(ratio(r.output_tok_per_s, first.output_tok_per_s));
    row.push_back(ratio(static_cast<double>(r.num_kv_blocks), static_cast<double>(first.num_kv_blocks)));
    row.push_back(ratio(r.decode_s, first.decode_s));
    if (latency) {
      row.push_back(r.ms_per_output_token && first.ms_per_output_token
                        ? ratio(*r.ms_per_output_token, *first.ms_per_output_token)
                        : "-");
    }
    print_row(out, row, widths);
  }
  print_run_spread(rep, out);
}

void print_capacity(const BenchReport& rep, std::ostream& out) {
  const std::vector<std::string> head = {"kv dtype", "B/token", "block size", "blocks", "sequences", "x sequences"};
  const std::vector<int> widths(head.size(), 11);
  print_row(out, head, widths);
  const BenchResult& first = rep.results.front();
  for (const auto& r : rep.results) {
    print_row(out,
              {r.kv_cache_dtype, std::to_string(r.kv_bytes_per_token), std::to_string(r.kv_block_size),
               std::to_string(r.capacity_blocks.value_or(0)), std::to_string(r.capacity_sequences.value_or(0)),
               ratio(static_cast<double>(r.capacity_sequences.value_or(0)),
                     static_cast<double>(first.capacity_sequences.value_or(0)))},
              widths);
  }
}

// "cuda (NVIDIA H100 80GB HBM3)", or just "cpu" when the device has no other name.
std::string device_label(const BenchResult& r) {
  return r.device_name.empty() || r.device_name == r.device ? r.device
                                                            : r.device + " (" + r.device_name + ")";
}

}  // namespace

nlohmann::json bench_report_to_json(const BenchReport& rep) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : rep.results) results.push_back(result_to_json(r));
  nlohmann::json j = {{"engine_commit", rep.engine_commit},
                      {"date_utc", rep.date_utc},
                      {"command", rep.command},
                      {"model", rep.model},
                      {"load_format", rep.load_format},
                      {"workload", rep.workload},
                      {"workload_description", rep.workload_description},
                      {"ceilings", {{"bytes_per_second", rep.ceilings.bytes_per_second},
                                    {"flops_per_second", rep.ceilings.flops_per_second}}},
                      {"results", results}};
  if (rep.capacity_budget_bytes > 0) {
    j["capacity_budget_bytes"] = rep.capacity_budget_bytes;
    j["capacity_seq_len"] = rep.capacity_seq_len;
  }
  return j;
}

void write_bench_json(const BenchReport& report, const std::string& path) {
  std::ofstream out(path);
  NANOVLLM_CHECK(out.good(), "--json: cannot open '", path, "' for writing");
  out << bench_report_to_json(report).dump(2) << "\n";
  NANOVLLM_CHECK(out.good(), "--json: writing '", path, "' failed");
}

void print_bench_table(const BenchReport& rep, std::ostream& out) {
  out << rep.workload << " on " << rep.model << " (" << rep.load_format << " weights), commit "
      << rep.engine_commit << ", " << (rep.results.empty() ? "" : device_label(rep.results[0]))
      << "\n"
      << rep.workload_description << "\n";
  if (rep.results.empty()) return;
  if (rep.capacity_budget_bytes > 0) {
    print_capacity(rep, out);
  } else {
    print_throughput(rep, out);
    out << "roofline = floor / wall at " << rep.ceilings.bytes_per_second / 1e12 << " TB/s and "
        << rep.ceilings.flops_per_second / 1e12 << " TFLOP/s (roofline.py's H200 ceilings by default)\n";
  }
}

}  // namespace nanovllm::bench
