// Host side of decode attention (kernels: decode_attention.cuh, one translation unit per
// activation type: decode_attention_{f32,f16,bf16}.cu).
#include <cstdint>

#include "backend/cuda/decode_attention.cuh"

namespace nanovllm::cuda {

using namespace decode_detail;

namespace {
// The most splits any policy may give a context bounded by max_context_len: one per
// kMinSplitTokens tokens, and 64.
int64_t most_splits(int32_t max_context_len) {
  return std::clamp<int64_t>((int64_t(max_context_len) + kMinSplitTokens - 1) / kMinSplitTokens,
                             1, 64);
}
}  // namespace

int32_t default_decode_min_waves(KvDType kv_dtype) {
  return kv_is_quantized(kv_dtype) ? 1 : kDefaultDecodeMinWaves;
}

int32_t decode_attention_splits(int32_t num_seqs, int32_t num_kv_heads, int32_t max_context_len,
                                int32_t resident_ctas, int32_t min_waves) {
  // A CTA's time is proportional to its tokens and the grid runs in waves of resident_ctas. With
  // unequal contexts (and a batch that shrinks as sequences finish) a single wave of (sequence,
  // KV head) CTAs ends in a tail where a few long contexts run on an almost idle GPU; min_waves
  // waves of CTAs make the tail a small part of the step. Up to twice that S, equal contexts
  // cost ~ ceil(pairs x S / resident) / S: take the S that minimizes it (the smallest such S:
  // fewer partials to reduce), never more than one split per kMinSplitTokens tokens of the bound.
  const int64_t pairs = std::max<int64_t>(1, int64_t(num_seqs) * num_kv_heads);
  const int64_t resident = std::max<int32_t>(resident_ctas, 1);
  const int64_t target = int64_t(std::max(min_waves, 1)) * resident;
  if (pairs >= target) return 1;
  const int64_t most = most_splits(max_context_len);
  const int64_t least = std::min((target + pairs - 1) / pairs, most);
  auto cost = [&](int64_t s) { return double((pairs * s + resident - 1) / resident) / double(s); };
  int64_t best = least;
  double best_cost = cost(least);
  for (int64_t s = least + 1; s <= std::min(2 * least, most); ++s) {
    if (cost(s) < best_cost * 0.99) {
      best = s;
      best_cost = cost(s);
    }
  }
  return int32_t(best);
}

int32_t decode_attention_even_splits(int32_t num_seqs, int32_t num_kv_heads,
                                     int32_t max_context_len, int32_t resident_ctas) {
  // Measured on an H100 (tools/decode_attention_bench splits; docs/benchmarks.md): with equal
  // contexts the time follows the rounds of resident CTAs, except that a partial last round
  // takes about as long as half a round however thin it is (memory-bound CTAs run faster when
  // fewer share the GPU, down to about half the slots), and each split costs ~3% (its q setup,
  // partials and the merge). E.g. 32 x 4096 INT8 (528 resident): S = 2 (512 CTAs) 103 us,
  // S = 4 110, S = 6 (what min_waves 2 picks) 114, S = 1 111.
  constexpr double kThinRound = 0.52, kPerSplit = 0.03;
  const int64_t pairs = std::max<int64_t>(1, int64_t(num_seqs) * num_kv_heads);
  const int64_t resident = std::max<int32_t>(resident_ctas, 1);
  const int64_t most = most_splits(max_context_len);
  auto cost = [&](int64_t s) {
    const int64_t ctas = pairs * s, full = ctas / resident, rest = ctas % resident;
    const double rounds = double(full) + (rest ? std::max(double(rest) / resident, kThinRound) : 0.);
    return rounds / double(s) * (1. + kPerSplit * double(s));
  };
  int64_t best = 1;
  for (int64_t s = 2; s <= most; ++s)
    if (cost(s) < cost(best)) best = s;
  return int32_t(best);
}

int32_t decode_attention_ctas_per_sm(DType act, KvDType kv_dtype, int32_t head_dim,
                                     int32_t group_size, bool fp8_int4_mma) {
  int n = 1;
  dispatch_act(act, "paged_attention (decode)", [&](auto tag) {
    n = ctas_per_sm_for_act<decltype(tag)>(kv_dtype, head_dim, group_size, fp8_int4_mma);
  });
  return n;
}

int64_t decode_attention_workspace_floats(int32_t num_seqs, int32_t num_heads, int32_t head_dim,
                                          int32_t num_splits) {
  if (num_splits <= 1) return 0;
  return int64_t(num_seqs) * num_heads * num_splits * (head_dim + 2);
}

bool decode_attention_supported(int32_t head_dim, int32_t group_size) {
  return (head_dim == 64 || head_dim == 128) && group_size >= 1 && group_size <= 8;
}

void launch_decode_attention(const Tensor& q, const PagedKvLayer& kv, const AttentionMeta& meta,
                             float scale, Tensor out, float* workspace, int32_t* split_counters,
                             int32_t num_splits, bool fp8_int4_mma, const Stream& stream) {
  if (meta.num_seqs == 0) return;
  NANOVLLM_CHECK(meta.num_seqs <= 65535, "paged_attention (decode): ", meta.num_seqs,
                 " sequences exceed the grid's 65535");
  // The tensor-core INT8 loop indexes slots and scales in 32 bits.
  NANOVLLM_CHECK(int64_t(kv.num_blocks) * kv.block_size * kv.num_kv_heads <= INT32_MAX,
                 "paged_attention (decode): a cache of ", kv.num_blocks, " blocks x ",
                 kv.block_size, " slots x ", kv.num_kv_heads,
                 " KV heads exceeds 2^31 - 1 (slot, head) pairs");
  const int D = kv.head_dim;
  const int Hq = int(q.dim(1) / D);
  const int G = Hq / kv.num_kv_heads;
  DecodeArgs a{meta.context_lens, meta.block_tables, meta.max_blocks_per_seq,
               FastDivider(uint32_t(kv.block_size)), Hq, G, num_splits, 1, scale, workspace,
               workspace + int64_t(meta.num_seqs) * Hq * num_splits * D, split_counters};
  dispatch_act(q.dtype, "paged_attention (decode)", [&](auto tag) {
    launch_for_act<decltype(tag)>(q, kv, meta, a, fp8_int4_mma, out, stream);
  });
  check_launch("paged_attention (decode)");
}

}  // namespace nanovllm::cuda
