#!/usr/bin/env bash
# On the GPU machine, after scripts/gpu_run.sh built build-gpu: every BENCH.md workload with BF16
# and INT8 KV side by side (W1 and W5 also FP8 and INT4), then the transformers peer and nanovllm back
# to back on W2 and W4, and a per-op profile of W1 (eager) per KV dtype. JSON and logs go to
# OUTDIR/results/, packed as OUTDIR/results.tar.
#   scripts/gpu_bench_all.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
R=$OUT/results
mkdir -p "$R"
BIN=build-gpu/nanovllm

run() {
  local name=$1 limit=$2
  shift 2
  timeout "$limit" "$BIN" bench --preset qwen3-0.6b --load-format dummy --device cuda "$@" \
    --json "$R/$name.json" >"$R/$name.log" 2>&1
  echo "== $name: rc=$?"
  grep -E "^ +(kv dtype|bf16|int8|int4|fp8)" "$R/$name.log"
}

run w1 150 --workload W1 --kv-cache-dtype bf16 int8
run w1_fp8_int4 90 --workload W1 --kv-cache-dtype fp8_e4m3 int4  # never recorded before 2026-12-07
run w2 90 --workload W2 --kv-cache-dtype bf16 int8
run w3 90 --workload W3 --kv-cache-dtype bf16 int8
run w4 60 --workload W4 --kv-cache-dtype bf16 int8
run w5 60 --workload W5 --kv-cache-dtype bf16 int8 fp8_e4m3 int4
# Per-op time of the batch decode steps (eager, CUDA events around every op; NANOVLLM_PROFILE_OPS).
profile() {
  local name=$1
  shift
  NANOVLLM_PROFILE_OPS=1 timeout 120 "$BIN" bench --preset qwen3-0.6b --load-format dummy \
    --device cuda --enforce-eager "$@" >"$R/$name.log" 2>&1
  echo "== $name: rc=$?"
}
profile profile_w1_bf16 --workload W1 --kv-cache-dtype bf16
profile profile_w1_int8 --workload W1 --kv-cache-dtype int8
if [ "${NANOVLLM_SKIP_PEERS:-0}" != 1 ]; then  # the transformers peer takes ~2 minutes
  NANOVLLM=$BIN OUT_DIR=$R/side_by_side KV_DTYPES=bf16,int8 EXTRA_ARGS="--device cuda" \
    timeout 180 bash bench/run_side_by_side.sh W2 W4 >"$R/side_by_side.log" 2>&1
  echo "== side by side: rc=$?"
  tail -12 "$R/side_by_side.log"
fi
tar -C "$OUT" -cf "$OUT/results.tar" results
