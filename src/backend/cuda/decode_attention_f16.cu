// Decode attention kernels for __half activations (see decode_attention.cuh).
#include "backend/cuda/decode_attention.cuh"

namespace nanovllm::cuda::decode_detail {
template void launch_for_act<__half>(const Tensor&, const PagedKvLayer&, const AttentionMeta&,
                                  const DecodeArgs&, Tensor, cudaStream_t);
}  // namespace nanovllm::cuda::decode_detail
