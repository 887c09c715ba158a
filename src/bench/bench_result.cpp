#include "bench/bench_result.h"

#include <algorithm>
#include <numeric>

namespace nanovllm::bench {

int median_run_index(const std::vector<RunTiming>& runs) {
  if (runs.empty()) return -1;
  std::vector<int> order(runs.size());
  std::iota(order.begin(), order.end(), 0);
  // Stable, so equal walls keep their run order and the choice is deterministic.
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return runs[size_t(a)].wall_s < runs[size_t(b)].wall_s; });
  return order[(order.size() - 1) / 2];
}

}  // namespace nanovllm::bench
