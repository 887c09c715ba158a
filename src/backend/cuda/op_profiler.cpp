#include "backend/cuda/op_profiler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace nanovllm::cuda {

namespace {
constexpr size_t kMaxPending = 4096;  // pairs recorded before the profiler waits and sums them
}

OpProfiler::OpProfiler(cudaStream_t stream) : stream_(stream) {}

bool OpProfiler::enabled_by_env() {
  const char* v = std::getenv("NANOVLLM_PROFILE_OPS");
  return v && std::strcmp(v, "1") == 0;
}

cudaEvent_t OpProfiler::take_event() {
  if (!free_events_.empty()) {
    cudaEvent_t e = free_events_.back();
    free_events_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  check_cuda(cudaEventCreate(&e), "op profiler: cudaEventCreate");
  return e;
}

int OpProfiler::begin(std::string name) {
  if (pending_.size() >= kMaxPending) harvest();
  Pending p{std::move(name), take_event(), take_event()};
  check_cuda(cudaEventRecord(p.start, stream_), "op profiler: cudaEventRecord");
  pending_.push_back(std::move(p));
  return int(pending_.size()) - 1;
}

void OpProfiler::end(int index) {
  if (index < 0 || index >= int(pending_.size())) return;
  cudaEventRecord(pending_[size_t(index)].stop, stream_);  // no throw: may run while unwinding
}

void OpProfiler::harvest() {
  for (Pending& p : pending_) {
    float ms = 0.f;
    if (cudaEventSynchronize(p.stop) == cudaSuccess &&
        cudaEventElapsedTime(&ms, p.start, p.stop) == cudaSuccess) {
      Total& t = totals_[p.name];
      ++t.calls;
      t.ms += ms;
    }
    cudaGetLastError();  // an op that threw before its stop event leaves nothing to time
    free_events_.push_back(p.start);
    free_events_.push_back(p.stop);
  }
  pending_.clear();
}

OpProfiler::~OpProfiler() {
  harvest();
  for (cudaEvent_t e : free_events_) cudaEventDestroy(e);
  if (totals_.empty()) return;
  std::vector<std::pair<std::string, Total>> rows(totals_.begin(), totals_.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  double all = 0;
  for (const auto& r : rows) all += r.second.ms;
  std::fprintf(stderr, "\n%-40s %10s %12s %10s %6s\n", "op (NANOVLLM_PROFILE_OPS)", "calls",
               "total ms", "mean us", "%");
  for (const auto& [name, t] : rows)
    std::fprintf(stderr, "%-40s %10lld %12.3f %10.2f %6.1f\n", name.c_str(), (long long)t.calls,
                 t.ms, 1000.0 * t.ms / double(t.calls), all > 0 ? 100.0 * t.ms / all : 0.0);
  std::fprintf(stderr, "%-40s %10s %12.3f\n", "all ops", "", all);
}

}  // namespace nanovllm::cuda
