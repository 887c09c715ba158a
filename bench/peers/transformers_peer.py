#!/usr/bin/env python3
"""Hugging Face transformers `generate` as the peer of `nanovllm bench` (BENCH.md's W2 and W4).

Random-weight Qwen3-0.6B shapes (or a config.json), BF16, SDPA attention, one batched
generate() of every sequence; the prompts are the same token ids `nanovllm bench` uses
(Python's random.seed(0), randint(0, 10000) per token). Prints one JSON object.

  python3 bench/peers/transformers_peer.py --workload W2 [--json FILE]
  python3 bench/peers/transformers_peer.py --workload W4

Needs torch with CUDA and transformers (present on the GPU machine, not here).
"""
import argparse
import json
import random
import sys
import time

# Qwen/Qwen3-0.6B's config.json, the fields that set the shapes.
QWEN3_0_6B = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                  max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0,
                  tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645)

# BENCH.md: (sequences, prompt tokens, output tokens). W1 (ragged), W3 and W5 are not run here.
WORKLOADS = {"W2": (256, 512, 256), "W4": (1, 512, 128)}


def uniform_prompts(num_seqs, prompt_len, seed):
    """The same ids as nanovllm's make_uniform_workload: one PythonRandom(seed) stream."""
    rng = random.Random(seed)
    return [[rng.randint(0, 10000) for _ in range(prompt_len)] for _ in range(num_seqs)]


def build_model(config_path, device):
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    fields = dict(QWEN3_0_6B)
    if config_path:
        with open(config_path) as f:
            fields.update(json.load(f))
    fields.pop("architectures", None)
    fields.pop("model_type", None)
    config = Qwen3Config(**fields)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa")
    return model.eval()


def timed_generate(model, prompts, max_new_tokens, device):
    """Wall seconds of one generate() of all prompts (equal lengths: no padding) and tokens made."""
    import torch

    input_ids = torch.tensor(prompts, dtype=torch.long, device=device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             do_sample=True, temperature=0.6, top_p=1.0, top_k=0,
                             max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,  # ignore_eos
                             pad_token_id=0)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return seconds, int((out.shape[1] - input_ids.shape[1]) * out.shape[0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", required=True, help="W2 or W4 (others are reported as not supported)")
    p.add_argument("--config", help="a model's config.json (default: Qwen3-0.6B's shapes)")
    p.add_argument("--num-prompts", type=int, help="keep only the first N sequences")
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", help="also write the JSON to this file")
    a = p.parse_args()

    result = {"peer": "transformers", "workload": a.workload, "kv_cache_dtype": "bf16",
              "attn_implementation": "sdpa", "supported": a.workload in WORKLOADS}
    if not result["supported"]:
        result["reason"] = "this peer runs W2 and W4 only (uniform lengths, one batched generate)"
    else:
        import torch
        import transformers

        num_seqs, prompt_len, max_tokens = WORKLOADS[a.workload]
        if a.num_prompts:
            num_seqs = min(num_seqs, a.num_prompts)
        model = build_model(a.config, a.device)
        timed_generate(model, uniform_prompts(1, 8, 1234), 16, a.device)  # warm-up
        torch.cuda.reset_peak_memory_stats()
        prompts = uniform_prompts(num_seqs, prompt_len, 0)
        seconds, generated = timed_generate(model, prompts, max_tokens, a.device)
        result.update(transformers_version=transformers.__version__, torch_version=torch.__version__,
                      gpu=torch.cuda.get_device_name(), num_seqs=num_seqs, input_tokens=num_seqs * prompt_len,
                      output_tokens=generated, wall_s=seconds, output_tok_per_s=generated / seconds,
                      peak_device_bytes=torch.cuda.max_memory_allocated())
        if a.workload == "W4":
            # Decode time per token: (the 128-token run - a 1-token run of an equal-length prompt) / 127,
            # the same measure as `nanovllm bench --workload W4`.
            one_s, _ = timed_generate(model, uniform_prompts(1, prompt_len, 4321), 1, a.device)
            result["ms_per_output_token"] = 1e3 * (seconds - one_s) / (max_tokens - 1)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
