#pragma once
#include <cstdint>
#include <string>

namespace nanovllm {

// Engine configuration: nano-vllm's fields and defaults, plus device and KV cache dtype.
struct Config {
  std::string model;  // a Hugging Face folder, a .gguf file, or empty with `preset`
  std::string tokenizer;  // folder with tokenizer.json when the model has none of its own
  std::string preset;  // built-in model config (e.g. "qwen3-0.6b"); implies dummy weights if no model
  std::string load_format = "auto";  // "auto" (read weights) | "dummy" (seeded random weights)
  int32_t max_num_batched_tokens = 16384;
  int32_t max_num_seqs = 512;
  int32_t max_model_len = 4096;  // capped by the model's max_position_embeddings
  double gpu_memory_utilization = 0.9;
  int32_t tensor_parallel_size = 1;
  bool enforce_eager = false;
  int32_t kvcache_block_size = 16;
  int32_t num_kvcache_blocks = -1;  // -1: size from memory
  bool enable_prefix_caching = true;
  std::string device = "auto";         // cpu | cuda | auto
  std::string kv_cache_dtype = "auto";  // auto | bf16 | fp16 | f32 | int8 | fp8_e4m3 | int4
  bool kv_quant = false;  // the original proposal's switch: true means kv_cache_dtype "int8"
  double cpu_kvcache_space_gib = 4.0;   // KV budget on the CPU backend (vLLM's VLLM_CPU_KVCACHE_SPACE)
  uint64_t dummy_seed = 0;              // seed of --load-format dummy weights

  // Throws nanovllm::Error naming the field and the allowed range.
  void validate() const;
  // kv_cache_dtype with kv_quant applied: "int8" when kv_quant is set and the dtype is "auto".
  std::string effective_kv_cache_dtype() const;
};

}  // namespace nanovllm
