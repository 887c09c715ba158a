#!/usr/bin/env bash
# The main job on a built-in default: BF16 and INT8 KV side by side.
# GPU: nano-vllm's benchmark (W1) on qwen3-0.6b with random weights.
# CPU: a small preset and a shortened workload that finishes in about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/nanovllm
[ -x "$BIN" ] || { echo "build/nanovllm is missing: run scripts/install.sh first" >&2; exit 1; }

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "$BIN" bench --preset qwen3-0.6b --load-format dummy --workload W1 --kv-cache-dtype bf16 int8 \
    --json out/main_w1.json
else
  mkdir -p out
  "$BIN" bench --preset qwen3-tiny --load-format dummy --workload W2 --num-prompts 16 \
    --max-num-seqs 16 --device cpu --kv-cache-dtype bf16 int8 --json out/main_cpu.json
fi
"$BIN" estimate --preset qwen3-0.6b --kv-cache-dtype int8 --memory 8
