#!/usr/bin/env bash
# On the GPU machine: builds `nanovllm serve` in build-gpu-serve (scripts/gpu_serve_env.sh), serves
# Qwen3-0.6B shapes with random weights, and runs bench/serve_bench.py with nano-vllm's benchmark
# requests (W1's 256) at full concurrency, per KV dtype; then W1 offline for comparison. Results
# in OUTDIR (JSON and logs).
#   scripts/gpu_serve_bench.sh OUTDIR [kv dtypes (default: bf16 int8)]
# NANOVLLM_SERVE_DEVICE=cpu NANOVLLM_SERVE_ARGS="--preset qwen3-tiny ..." rehearse it without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
shift
DTYPES=("$@")
[ ${#DTYPES[@]} -eq 0 ] && DTYPES=(bf16 int8)
DEVICE=${NANOVLLM_SERVE_DEVICE:-cuda}
MODEL_ARGS=${NANOVLLM_SERVE_ARGS:---preset qwen3-0.6b --load-format dummy}
BENCH_ARGS=${NANOVLLM_SERVE_BENCH_ARGS:-}
source scripts/gpu_serve_env.sh
CUDA_FLAG=-DNANOVLLM_CUDA=$([ "$DEVICE" = cuda ] && echo ON || echo OFF)
cmake -S . -B build-gpu-serve $CUDA_FLAG -DNANOVLLM_CUDA_ARCHITECTURES=90a -DCMAKE_BUILD_TYPE=Release \
  -DNANOVLLM_TESTS=OFF >"$OUT/serve_configure.log" 2>&1 &&
  cmake --build build-gpu-serve -j "$(nproc)" --target nanovllm_cmd >"$OUT/serve_build.log" 2>&1
echo "== build: rc=$?"
BIN=build-gpu-serve/nanovllm
for dtype in "${DTYPES[@]}"; do
  # shellcheck disable=SC2086
  "$BIN" serve $MODEL_ARGS --device "$DEVICE" --kv-cache-dtype "$dtype" --port 0 --no-request-log \
    >"$OUT/serve_$dtype.stdout" 2>"$OUT/serve_$dtype.log" &
  pid=$!
  url=""
  for _ in $(seq 1 300); do
    url=$(grep -oE "http://[0-9.]+:[0-9]+" "$OUT/serve_$dtype.log" | head -1)
    [ -n "$url" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$url" ]; then echo "== serve $dtype: did not start"; tail -5 "$OUT/serve_$dtype.log"; continue; fi
  # shellcheck disable=SC2086
  timeout 600 python3 bench/serve_bench.py --url "$url" --concurrency 256 --json "$OUT/serve_bench_$dtype.json" \
    $BENCH_ARGS >"$OUT/serve_bench_$dtype.log" 2>&1
  echo "== serve_bench $dtype: rc=$?"
  tail -1 "$OUT/serve_bench_$dtype.log"
  kill -TERM $pid
  wait $pid
done
# The same requests offline, for the ratio.
if [ "$DEVICE" = cuda ]; then
  # shellcheck disable=SC2086
  timeout 300 "$BIN" bench $MODEL_ARGS --device cuda --workload W1 --kv-cache-dtype "${DTYPES[@]}" \
    --json "$OUT/W1_offline.json" >"$OUT/W1_offline.log" 2>&1
  echo "== W1 offline: rc=$?"
  grep -E "^ +(kv dtype|bf16|int8|fp8|int4)" "$OUT/W1_offline.log"
fi
