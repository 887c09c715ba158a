#include "bench/roofline.h"

#include <algorithm>

#include "core/error.h"

namespace nanovllm::bench {
namespace {

// roofline.py's model_numbers().
struct ModelNumbers {
  double layers, heads, kv_heads, head_dim, body_params, head_params, weight_bytes;
};

ModelNumbers model_numbers(const RooflineModelConfig& c) {
  NANOVLLM_CHECK(c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 &&
                     c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.vocab_size > 0,
                 "roofline: model config needs positive hidden_size, intermediate_size, "
                 "num_hidden_layers, num_attention_heads, num_key_value_heads and vocab_size");
  const double d = static_cast<double>(c.hidden_size);
  const double f = static_cast<double>(c.intermediate_size);
  const double l = static_cast<double>(c.num_hidden_layers);
  const double h = static_cast<double>(c.num_attention_heads);
  const double kv = static_cast<double>(c.num_key_value_heads);
  const double hd = static_cast<double>(c.head_dim > 0 ? c.head_dim : c.hidden_size / c.num_attention_heads);
  const double v = static_cast<double>(c.vocab_size);
  const double per_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * f;
  const double body = l * per_layer;
  const double head = v * d;  // lm_head (tied or not, it is read every decode step)
  return {l, h, kv, hd, body, head, 2 * (body + head)};
}

}  // namespace

std::optional<RooflineModelConfig> roofline_preset(std::string_view name) {
  if (name == "qwen3-0.6b") return RooflineModelConfig{151936, 1024, 3072, 28, 16, 8, 128, true};
  if (name == "qwen3-8b") return RooflineModelConfig{151936, 4096, 12288, 36, 32, 8, 128, false};
  return std::nullopt;
}

double roofline_kv_element_bytes(KvDType dtype) {
  switch (dtype) {
    case KvDType::F32: return 4.0;
    case KvDType::F16:
    case KvDType::BF16: return 2.0;
    case KvDType::INT8:
    case KvDType::FP8_E4M3: return 1.0;
    case KvDType::INT4: return 0.5;
  }
  return 0;
}

double roofline_kv_scale_bytes(KvDType dtype) { return kv_is_quantized(dtype) ? 4.0 : 0.0; }

double roofline_kv_bytes_per_token(const RooflineModelConfig& cfg, KvDType dtype) {
  const ModelNumbers m = model_numbers(cfg);
  return m.layers * 2 * m.kv_heads * (m.head_dim * roofline_kv_element_bytes(dtype) + roofline_kv_scale_bytes(dtype));
}

RooflineFloor roofline_floor(const RooflineModelConfig& cfg, KvDType dtype, std::span<const int64_t> inputs,
                             std::span<const int64_t> outputs, const RooflineCeilings& ceilings) {
  NANOVLLM_CHECK(inputs.size() == outputs.size() && !inputs.empty(),
                 "roofline: need one output length per input length, got ", inputs.size(), " inputs and ",
                 outputs.size(), " outputs");
  NANOVLLM_CHECK(ceilings.bytes_per_second > 0 && ceilings.flops_per_second > 0,
                 "roofline: ceilings must be positive");
  const ModelNumbers m = model_numbers(cfg);
  const double per_tok = roofline_kv_bytes_per_token(cfg, dtype);
  double kv_reads = 0;  // cached tokens read in decode
  double sum_inputs = 0;
  double sum_outputs = 0;
  double prefill_attn_pairs = 0;
  const double attn = 4 * m.layers * m.heads * m.head_dim;  // QK^T and PV flops per (query, key) pair
  for (size_t s = 0; s < inputs.size(); ++s) {
    const double i = static_cast<double>(inputs[s]);
    const double o = static_cast<double>(outputs[s]);
    kv_reads += o * i + o * (o - 1) / 2;
    sum_inputs += i;
    sum_outputs += o;
    prefill_attn_pairs += attn * i * i / 2;
  }
  const double steps = static_cast<double>(*std::max_element(outputs.begin(), outputs.end()));
  const double n = static_cast<double>(inputs.size());
  const double prefill_flops = 2 * m.body_params * sum_inputs + prefill_attn_pairs + 2 * m.head_params * n;
  const double decode_flops = 2 * (m.body_params + m.head_params) * sum_outputs + attn * kv_reads;
  RooflineFloor r;
  r.kv_bytes_per_token = per_tok;
  r.kv_read_s = kv_reads * per_tok / ceilings.bytes_per_second;
  r.kv_write_s = (sum_inputs + sum_outputs) * per_tok / ceilings.bytes_per_second;
  r.weight_read_s = steps * m.weight_bytes / ceilings.bytes_per_second;
  r.matmul_s = (prefill_flops + decode_flops) / ceilings.flops_per_second;
  r.floor_s = r.kv_read_s + r.kv_write_s + r.weight_read_s + r.matmul_s;
  r.output_tokens = static_cast<int64_t>(sum_outputs);
  r.floor_output_tok_per_s = sum_outputs / r.floor_s;
  return r;
}

}  // namespace nanovllm::bench
