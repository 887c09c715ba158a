// Host side of decode attention (kernels: decode_attention.cuh, one translation unit per
// activation type: decode_attention_{f32,f16,bf16}.cu).
#include "backend/cuda/decode_attention.cuh"

namespace nanovllm::cuda {

using namespace decode_detail;

int32_t decode_attention_splits(int32_t num_seqs, int32_t num_kv_heads, int32_t max_context_len,
                                int32_t num_sms) {
  // Enough CTAs for ~4 per SM; never more splits than kMinSplitTokens-token pieces of the bound.
  const int64_t ctas = std::max<int64_t>(1, int64_t(num_seqs) * num_kv_heads);
  const int64_t want = (int64_t(std::max(num_sms, 1)) * 4 + ctas - 1) / ctas;
  const int64_t most = std::max<int64_t>(1, (int64_t(max_context_len) + kMinSplitTokens - 1) /
                                                kMinSplitTokens);
  return int32_t(std::clamp<int64_t>(want, 1, std::min<int64_t>(most, 64)));
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
                             float scale, Tensor out, float* workspace, int32_t num_splits,
                             cudaStream_t stream) {
  if (meta.num_seqs == 0) return;
  const int D = kv.head_dim;
  const int Hq = int(q.dim(1) / D);
  const int G = Hq / kv.num_kv_heads;
  DecodeArgs a{meta.context_lens, meta.block_tables, meta.max_blocks_per_seq, Hq, G, num_splits,
               1, scale, workspace,
               workspace + int64_t(meta.num_seqs) * Hq * num_splits * D};
  dispatch_act(q.dtype, "paged_attention (decode)", [&](auto tag) {
    launch_for_act<decltype(tag)>(q, kv, meta, a, out, stream);
  });
  check_launch("paged_attention (decode)");
}

}  // namespace nanovllm::cuda
