#include "cli/engine_options.h"

#include <cstdlib>

namespace nanovllm::cli {

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& v) {
        return std::strtod(v.c_str(), nullptr) > 0 ? std::string() : std::string("must be > 0");
      },
      "NUMBER>0");
}

CLI::Validator non_negative_number() {
  return CLI::Validator(
      [](std::string& v) {
        return std::strtod(v.c_str(), nullptr) >= 0 ? std::string() : std::string("must be >= 0");
      },
      "NUMBER>=0");
}

void add_engine_options(CLI::App& cmd, EngineOptions& opts, bool tuning) {
  Config& c = opts.config;
  cmd.add_option("--model", c.model, "Hugging Face model folder or .gguf file");
  cmd.add_option("--preset", c.preset, "built-in model config (qwen3-0.6b, qwen3-tiny, llama-tiny)");
  cmd.add_option("--load-format", c.load_format, "auto (read weights) or dummy (seeded random)")
      ->check(CLI::IsMember({"auto", "dummy"}));
  cmd.add_option("--tokenizer", c.tokenizer, "folder with tokenizer.json (when the model has none)");
  cmd.add_option("--device", c.device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd.add_option("--kv-cache-dtype", c.kv_cache_dtype, "auto, bf16, fp16, f32, int8, fp8_e4m3, int4")
      ->check(CLI::IsMember({"auto", "bf16", "fp16", "f32", "int8", "fp8", "fp8_e4m3", "int4"}));
  cmd.add_flag("--kv-quant", c.kv_quant, "INT8 KV cache (the same as --kv-cache-dtype int8)");
  if (!tuning) return;
  cmd.add_option("--max-num-seqs", c.max_num_seqs, "most sequences in one batch")->check(positive_number());
  cmd.add_option("--max-num-batched-tokens", c.max_num_batched_tokens, "token budget of one step")
      ->check(positive_number());
  cmd.add_option("--max-model-len", c.max_model_len, "longest sequence")->check(positive_number());
  cmd.add_option("--block-size", c.kvcache_block_size, "KV cache block size in tokens")
      ->check(CLI::Range(1, 1024));
  cmd.add_option("--num-kvcache-blocks", c.num_kvcache_blocks, "KV blocks (-1: size from memory)");
  cmd.add_option("--gpu-memory-utilization", c.gpu_memory_utilization, "fraction of GPU memory to use")
      ->check(CLI::Range(0.01, 1.0));
  cmd.add_option("--cpu-kvcache-space", c.cpu_kvcache_space_gib, "KV cache GiB on the CPU")
      ->check(positive_number());
  cmd.add_flag("--enforce-eager", c.enforce_eager, "no CUDA graphs");
  cmd.add_flag_callback("--no-prefix-caching", [&c] { c.enable_prefix_caching = false; },
                        "disable prefix caching");
  cmd.add_option("--dummy-seed", c.dummy_seed, "seed of --load-format dummy weights");
}

void require_model(const EngineOptions& opts) {
  if (opts.config.model.empty() && opts.config.preset.empty())
    throw CLI::ValidationError("--model", "give --model DIR|FILE.gguf or --preset NAME");
}

}  // namespace nanovllm::cli
