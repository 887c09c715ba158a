#pragma once
// Dequantization of ggml tensor types to float32: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K. Block layouts are ggml's (little-endian, f16 scales).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nanovllm {

bool ggml_type_dequantizable(uint32_t type);

// `data` holds exactly numel values of `type` (numel a multiple of the type's block size).
// Throws Error "<what>: type X is not supported (supported: ...)" for other types, or when the
// byte count does not match.
std::vector<float> dequantize_to_f32(uint32_t type, std::span<const uint8_t> data, int64_t numel,
                                     const std::string& what);

}  // namespace nanovllm
