// Decode attention kernels for float activations (see decode_attention.cuh).
#include "backend/cuda/decode_attention.cuh"

namespace nanovllm::cuda::decode_detail {
NANOVLLM_DECODE_FOR_ACT(, float)
}  // namespace nanovllm::cuda::decode_detail
