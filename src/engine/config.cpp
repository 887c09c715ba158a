#include "nanovllm/config.h"

#include "core/error.h"
#include "core/kv_dtype.h"

namespace nanovllm {

void Config::validate() const {
  auto range = [](const char* field, double value, double lo, double hi) {
    NANOVLLM_CHECK(value >= lo && value <= hi, "config: ", field, " = ", value,
                   " is out of range; expected ", lo, " to ", hi);
  };
  NANOVLLM_CHECK(!model.empty() || !preset.empty(),
                 "config: neither model (a folder or .gguf file) nor preset is set");
  NANOVLLM_CHECK(load_format == "auto" || load_format == "dummy", "config: load_format = '",
                 load_format, "'; expected auto or dummy");
  range("max_num_batched_tokens", max_num_batched_tokens, 1, 1 << 20);
  range("max_num_seqs", max_num_seqs, 1, 4096);
  range("max_model_len", max_model_len, 1, 1 << 22);
  NANOVLLM_CHECK(gpu_memory_utilization > 0 && gpu_memory_utilization <= 1,
                 "config: gpu_memory_utilization = ", gpu_memory_utilization,
                 " is out of range; expected a value in (0, 1]");
  NANOVLLM_CHECK(tensor_parallel_size == 1, "config: tensor_parallel_size = ",
                 tensor_parallel_size, " is not supported yet; expected 1");
  range("kvcache_block_size", kvcache_block_size, 1, 1024);
  NANOVLLM_CHECK(num_kvcache_blocks == -1 || num_kvcache_blocks > 0, "config: num_kvcache_blocks = ",
                 num_kvcache_blocks, "; expected -1 (size from memory) or a positive count");
  NANOVLLM_CHECK(device == "cpu" || device == "cuda" || device == "auto", "config: device = '",
                 device, "'; expected cpu, cuda or auto");
  NANOVLLM_CHECK(parse_kv_dtype(kv_cache_dtype, DType::BF16).has_value(),
                 "config: kv_cache_dtype = '", kv_cache_dtype,
                 "'; expected auto, bf16, fp16, f32, int8, fp8_e4m3 or int4");
  NANOVLLM_CHECK(!kv_quant || kv_cache_dtype == "auto" || kv_cache_dtype == "int8",
                 "config: kv_quant = true asks for an int8 KV cache but kv_cache_dtype = '",
                 kv_cache_dtype, "'; set one of them (kv_quant is kv_cache_dtype int8)");
  NANOVLLM_CHECK(cpu_kvcache_space_gib > 0, "config: cpu_kvcache_space_gib = ",
                 cpu_kvcache_space_gib, "; expected a positive size in GiB");
}

std::string Config::effective_kv_cache_dtype() const {
  return kv_quant && kv_cache_dtype == "auto" ? "int8" : kv_cache_dtype;
}

}  // namespace nanovllm
