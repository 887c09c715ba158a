#!/usr/bin/env bash
# On the GPU machine, after scripts/gpu_run.sh built build-gpu: the kernel micro-benchmarks
# (tools/decode_attention_bench.cu: decode attention loop variants; tools/linear_bench.cu:
# cuBLASLt candidates and split-K for the decode-batch products). Logs go to OUTDIR.
#   scripts/gpu_microbench.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
for tool in decode_attention_bench linear_bench; do
  if [ -x "build-gpu/$tool" ]; then
    timeout 120 "build-gpu/$tool" >"$OUT/$tool.log" 2>&1
    echo "== $tool: rc=$?"
  else
    echo "== $tool: not built"
  fi
done
