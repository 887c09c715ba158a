#pragma once
// Per-op GPU timing of the CUDA backend, on when env NANOVLLM_PROFILE_OPS=1: a CUDA event pair
// around every op launched outside graph capture, summed per op name; the table (op, calls,
// total ms, mean us) goes to stderr when the profiler is destroyed. Off, an op pays one branch.
#include <cuda_runtime.h>

#include <map>
#include <string>
#include <vector>

namespace nanovllm::cuda {

class OpProfiler {
 public:
  explicit OpProfiler(cudaStream_t stream);
  ~OpProfiler();  // prints the table (if anything was recorded) and frees the events
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Whether NANOVLLM_PROFILE_OPS=1 is set in the environment.
  static bool enabled_by_env();

  // Records the start event; returns the index to pass to end().
  int begin(std::string name);
  void end(int index);

 private:
  struct Pending {
    std::string name;
    cudaEvent_t start, stop;
  };
  struct Total {
    int64_t calls = 0;
    double ms = 0;
  };
  void harvest();  // waits for the recorded events and folds them into totals_
  cudaEvent_t take_event();

  cudaStream_t stream_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> free_events_;
  std::map<std::string, Total> totals_;
};

// RAII: times one op when a profiler is given (nullptr: does nothing).
class OpTimer {
 public:
  OpTimer(OpProfiler* p, const char* name) : p_(p), index_(p ? p->begin(name) : -1) {}
  OpTimer(OpProfiler* p, std::string name) : p_(p), index_(p ? p->begin(std::move(name)) : -1) {}
  ~OpTimer() {
    if (p_) p_->end(index_);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfiler* p_;
  int index_;
};

}  // namespace nanovllm::cuda
