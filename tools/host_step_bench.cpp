// The host's share of a decode step, without a model: a workload of ../shared/bench/BENCH.md runs
// through the scheduler, build_batch_input, the padding of a CUDA-graph step, and postprocess
// (every sampled token is 7; the workloads ignore EOS), and the mean time of each per decode step
// is printed. Between the sampler's synchronize and the next graph launch the GPU waits for this
// work, so it bounds the GPU-idle host time of a step (the uploads and launches come on top).
//
//   host_step_bench [W1|W2|W3|W4] [num_blocks]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/workloads.h"
#include "engine/batch_builder.h"
#include "engine/graph_buckets.h"
#include "scheduler/scheduler.h"

using namespace nanovllm;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "W1";
  const auto id = bench::parse_workload_id(name);
  if (!id || *id == bench::WorkloadId::W5) {
    std::fprintf(stderr, "host_step_bench: workload '%s' is not one of W1..W4\n", name.c_str());
    return 2;
  }
  const bench::Workload w = bench::make_workload(*id);
  SchedulerConfig config;
  config.max_num_seqs = 256;  // the bench's engine settings
  config.max_model_len = w.max_model_len;
  config.num_blocks = argc > 2 ? std::atoi(argv[2]) : 39897;  // BF16 W1 blocks on an H100
  Scheduler scheduler(config);
  for (size_t i = 0; i < w.prompt_token_ids.size(); ++i) {
    SamplingParams params;
    params.max_tokens = w.max_tokens[i];
    params.temperature = w.temperature;
    params.ignore_eos = w.ignore_eos;
    scheduler.add(std::make_shared<Sequence>(int64_t(i), w.prompt_token_ids[i], params));
  }
  const int32_t width = (config.max_model_len + config.block_size - 1) / config.block_size;
  const std::vector<int32_t> graph_sizes = decode_graph_sizes(config.max_num_seqs);
  double schedule_s = 0, build_s = 0, pad_s = 0, post_s = 0;
  int64_t steps = 0, rows = 0;
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  while (!scheduler.is_finished()) {
    const auto t0 = Clock::now();
    const ScheduledBatch batch = scheduler.schedule();
    const auto t1 = Clock::now();
    BatchInput input = build_batch_input(batch, config.block_size, width);
    const auto t2 = Clock::now();
    // ModelRunner pads in place to the graph bucket.
    if (!batch.is_prefill) pad_decode_batch(input, graph_bucket(graph_sizes, input.num_seqs()));
    const auto t3 = Clock::now();
    const std::vector<int32_t> sampled(size_t(batch.num_samples()), 7);
    scheduler.postprocess(batch, sampled);
    const auto t4 = Clock::now();
    if (batch.is_prefill) continue;
    schedule_s += seconds(t0, t1);
    build_s += seconds(t1, t2);
    pad_s += seconds(t2, t3);
    post_s += seconds(t3, t4);
    ++steps;
    rows += int64_t(batch.seqs.size());
  }
  const double n = double(std::max<int64_t>(steps, 1));
  std::printf("%s: %lld decode steps, mean batch %.1f; per step: schedule %.1f us, "
              "build_batch_input %.1f us, padding %.1f us, postprocess %.1f us; "
              "all decode steps %.3f s\n",
              name.c_str(), static_cast<long long>(steps), double(rows) / n, 1e6 * schedule_s / n,
              1e6 * build_s / n, 1e6 * pad_s / n, 1e6 * post_s / n,
              schedule_s + build_s + pad_s + post_s);
  return 0;
}
