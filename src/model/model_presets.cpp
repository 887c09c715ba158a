// Built-in model configs, so the engine runs with dummy weights and no model files.
#include "model/model_config.h"

namespace nanovllm {
namespace {

// Qwen/Qwen3-0.6B's config.json; eos ids as its generation_config.json lists them.
ModelConfig qwen3_0_6b() {
  ModelConfig c;
  c.architecture_name = "Qwen3ForCausalLM";
  c.arch = Architecture::Qwen3;
  c.hidden_size = 1024;
  c.intermediate_size = 3072;
  c.num_hidden_layers = 28;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.vocab_size = 151936;
  c.max_position_embeddings = 40960;
  c.rms_norm_eps = 1e-6f;
  c.rope_theta = 1000000.0;
  c.tie_word_embeddings = true;
  c.attention_bias = false;
  c.qk_norm = true;
  c.torch_dtype = DType::BF16;
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645, 151643};
  return c;
}

// Small Qwen3 with the real vocabulary size, so Qwen3's tokenizer ids fit.
ModelConfig qwen3_tiny() {
  ModelConfig c = qwen3_0_6b();
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  return c;
}

// Small Llama with stories260K's 512-token vocabulary (bos 1, eos 2).
ModelConfig llama_tiny() {
  ModelConfig c;
  c.architecture_name = "LlamaForCausalLM";
  c.arch = Architecture::Llama;
  c.hidden_size = 256;
  c.intermediate_size = 688;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 32;
  c.vocab_size = 512;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = false;
  c.torch_dtype = DType::F32;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

}  // namespace

std::vector<std::string> preset_names() { return {"qwen3-0.6b", "qwen3-tiny", "llama-tiny"}; }

std::optional<ModelConfig> preset_config(std::string_view name) {
  if (name == "qwen3-0.6b") return qwen3_0_6b();
  if (name == "qwen3-tiny") return qwen3_tiny();
  if (name == "llama-tiny") return llama_tiny();
  return std::nullopt;
}

}  // namespace nanovllm
