#pragma once
// Per-row sampling parameters for the sequences of a step that sample, in batch order.
#include <vector>

#include "core/batch.h"
#include "scheduler/scheduler.h"

namespace nanovllm {

// The seed of a request: its own, or one derived from its id so unseeded requests still differ.
uint64_t request_seed(const Sequence& seq);
std::vector<SamplingRow> sampling_rows(const ScheduledBatch& batch);

}  // namespace nanovllm
