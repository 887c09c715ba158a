#pragma once
// Lower bound on the time a workload needs on one GPU: the arithmetic of ../shared/bench/roofline.py
// ported line for line (bytes that must cross device memory and matrix FLOPs over measured
// ceilings). Roofline efficiency = floor seconds / measured seconds.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/kv_dtype.h"

namespace nanovllm::bench {

// The config.json fields roofline.py reads.
struct RooflineModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
  bool tie_word_embeddings = false;
};

// roofline.py's PRESETS: "qwen3-0.6b", "qwen3-8b".
std::optional<RooflineModelConfig> roofline_preset(std::string_view name);

// roofline.py's defaults: one H200, measured.
struct RooflineCeilings {
  double bytes_per_second = 4.3e12;   // device-to-device copy, read + written
  double flops_per_second = 790e12;   // dense BF16 matrix product
};

struct RooflineFloor {
  double kv_bytes_per_token = 0;
  double kv_read_s = 0;
  double kv_write_s = 0;
  double weight_read_s = 0;
  double matmul_s = 0;
  double floor_s = 0;
  int64_t output_tokens = 0;
  double floor_output_tok_per_s = 0;
};

// roofline.py's KV_DTYPES: bytes per cached element (bf16/fp16 2, int8/fp8 1, int4 0.5; f32 4,
// which roofline.py lacks) and scale bytes per (token, kv head) for K and V each (4 if quantized).
double roofline_kv_element_bytes(KvDType dtype);
double roofline_kv_scale_bytes(KvDType dtype);
double roofline_kv_bytes_per_token(const RooflineModelConfig& cfg, KvDType dtype);

// inputs/outputs: per-sequence prompt and completion lengths, all sequences resident at once.
RooflineFloor roofline_floor(const RooflineModelConfig& cfg, KvDType dtype, std::span<const int64_t> inputs,
                             std::span<const int64_t> outputs, const RooflineCeilings& ceilings = {});

}  // namespace nanovllm::bench
