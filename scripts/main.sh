#!/usr/bin/env bash
# The main job on a built-in default: BF16 and INT8 KV side by side, then a real chat model.
# GPU: nano-vllm's benchmark (W1) on qwen3-0.6b with random weights.
# CPU: a small preset and a shortened workload (about a minute), and W5's resident sequences.
# Then SmolLM2-135M-Instruct (fetched by scripts/install.sh) answers a question with INT8 KV.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/nanovllm
[ -x "$BIN" ] || { echo "build/nanovllm is missing: run scripts/install.sh first" >&2; exit 1; }
mkdir -p out

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  DEVICE=cuda
  "$BIN" bench --preset qwen3-0.6b --load-format dummy --device cuda --workload W1 \
    --kv-cache-dtype bf16 int8 --json out/main_w1.json
else
  DEVICE=cpu
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
  "$BIN" bench --preset llama-tiny --load-format dummy --device cpu --workload W2 --num-prompts 4 \
    --max-num-seqs 4 --kv-cache-dtype f32 int8 --json out/main_cpu_w2.json
fi
"$BIN" bench --preset qwen3-0.6b --load-format dummy --device "$DEVICE" --workload W5 \
  --kv-cache-dtype bf16 int8 int4 --json out/main_w5.json

MODEL=${NANOVLLM_MODELS_DIR:-$HOME/.cache/nanovllm/models}/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$MODEL" ]; then
  "$BIN" estimate --model "$MODEL" --kv-cache-dtype int8 --memory 1
  "$BIN" generate --model "$MODEL" --device "$DEVICE" --chat --kv-cache-dtype int8 --temperature 0 \
    --max-tokens 64 "What is the capital of France? Answer in one sentence."
else
  echo "SmolLM2 GGUF not found at $MODEL (scripts/fetch_model.sh); skipped the chat example"
fi
