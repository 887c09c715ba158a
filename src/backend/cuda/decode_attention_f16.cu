// Decode attention kernels for __half activations (see decode_attention.cuh).
#include "backend/cuda/decode_attention.cuh"

namespace nanovllm::cuda::decode_detail {
NANOVLLM_DECODE_FOR_ACT(, __half)
}  // namespace nanovllm::cuda::decode_detail
