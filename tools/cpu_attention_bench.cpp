// The CPU backend's paged attention in isolation, per KV dtype: 28 layers of a step with
// `query` new rows per sequence (1: decode; = context: a whole prompt's prefill) over a paged
// cache (Qwen3-0.6B heads: 16 query, 8 KV, head_dim 128, blocks of 16), random contents. Prints
// the best of 7 timings.
// Usage: cpu_attention_bench [sequences] [context] [query]   (default 1 576 1: W4's mean decode)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "common/backend_op_cases.h"

int main(int argc, char** argv) {
  using namespace nanovllm;
  const int32_t seqs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  const int32_t context = argc > 2 ? std::max(1, std::atoi(argv[2])) : 576;
  const int32_t query = argc > 3 ? std::clamp(std::atoi(argv[3]), 1, context) : 1;
  constexpr int kLayers = 28, kReps = 7, kHq = 16, kHkv = 8, kD = 128;
  for (KvDType t : {KvDType::BF16, KvDType::INT8, KvDType::FP8_E4M3, KvDType::INT4}) {
    testing::PagedAttentionSpec spec;
    spec.q_lens.assign(size_t(seqs), query);
    spec.context_lens.assign(size_t(seqs), context);
    spec.num_heads = kHq;
    spec.num_kv_heads = kHkv;
    spec.head_dim = kD;
    spec.block_size = 16;
    spec.dtype = t;
    testing::PagedAttentionCase c = testing::make_paged_attention_case(spec, 7);
    std::vector<float> out(c.q.size());
    const Tensor q = testing::host_tensor(c.q, {seqs * query, kHq * kD});
    const Tensor o = testing::host_tensor(out, {seqs * query, kHq * kD});
    const PagedKvLayer layer = c.host_layer();
    const AttentionMeta meta = c.host_meta();
    double best = 1e30;
    for (int r = 0; r < kReps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int l = 0; l < kLayers; ++l) cpu::paged_attention(q, layer, meta, 0.088f, o);
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("%-9s %d x %d (%d new): %9.3f ms a %d-layer step\n", std::string(kv_dtype_name(t)).c_str(),
                seqs, context, query, best, kLayers);
  }
  return 0;
}
