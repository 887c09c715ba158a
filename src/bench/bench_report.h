#pragma once
// Presents a BenchReport: a side-by-side table with ratios against the first dtype, and JSON.
#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/bench_result.h"

namespace nanovllm::bench {

nlohmann::json bench_report_to_json(const BenchReport& report);
void write_bench_json(const BenchReport& report, const std::string& path);  // throws Error naming the file
void print_bench_table(const BenchReport& report, std::ostream& out);

}  // namespace nanovllm::bench
