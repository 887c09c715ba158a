#include "engine/sampling_rows.h"

#include "core/random.h"

namespace nanovllm {

uint64_t request_seed(const Sequence& seq) {
  return seq.params.seed ? *seq.params.seed : splitmix64(0x6e616e6f766c6c6dull ^ uint64_t(seq.id));
}

std::vector<SamplingRow> sampling_rows(const ScheduledBatch& batch) {
  std::vector<SamplingRow> rows;
  for (const ScheduledSeq& s : batch.seqs) {
    if (!s.samples) continue;
    const Sequence& seq = *s.seq;
    SamplingRow r;
    r.temperature = seq.params.temperature;  // below kGreedyBelowTemperature: greedy (backends)
    r.top_k = seq.params.top_k;
    r.top_p = seq.params.top_p;
    r.seed = request_seed(seq);
    r.step = uint64_t(seq.num_completion_tokens());
    rows.push_back(r);
  }
  return rows;
}

}  // namespace nanovllm
