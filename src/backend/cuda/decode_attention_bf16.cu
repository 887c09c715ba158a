// Decode attention kernels for __nv_bfloat16 activations (see decode_attention.cuh).
#include "backend/cuda/decode_attention.cuh"

namespace nanovllm::cuda::decode_detail {
NANOVLLM_DECODE_FOR_ACT(, __nv_bfloat16)
}  // namespace nanovllm::cuda::decode_detail
