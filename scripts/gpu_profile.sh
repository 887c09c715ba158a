#!/usr/bin/env bash
# On the GPU machine, after a CUDA build in build-gpu (scripts/gpu_run.sh, or
# `cmake --build build-gpu --target nanovllm_cmd`): where a W1 step's time goes now. Per-op event
# tables of W1 and W3 (eager, NANOVLLM_PROFILE_OPS=1, on stderr), ncu of one W1 decode window per
# KV dtype reduced by tools/ncu_step_breakdown.py, and W1 at decode min_waves 1 and 3 (2 is the
# default). Every step is skipped once fewer than its seconds are left of LIMIT (default 400).
#   scripts/gpu_profile.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
START=$(date +%s)
LIMIT=${LIMIT:-400}
left() { echo $(( LIMIT - ($(date +%s) - START) )); }
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
B="build-gpu/nanovllm bench --preset qwen3-0.6b --load-format dummy --device cuda"

for w in W1 W3; do
  [ "$(left)" -gt 90 ] || { note "profile $w: skipped"; continue; }
  NANOVLLM_PROFILE_OPS=1 timeout 90 $B --workload $w --kv-cache-dtype bf16 int8 --enforce-eager \
    --json "$OUT/${w}_eager.json" >"$OUT/profile_$w.log" 2>&1
  note "profile $w: rc=$?"
done

NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null || true)
for d in int8 bf16; do
  [ -n "$NCU" ] && [ "$(left)" -gt 130 ] || { note "ncu $d: skipped (ncu '${NCU}')"; continue; }
  # --kill: stop once the window is profiled (ncu prints the CSV when the process ends).
  timeout 120 "$NCU" --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
    --csv --launch-skip 80000 --launch-count 340 --kill yes \
    $B --workload W1 --kv-cache-dtype "$d" --enforce-eager >"$OUT/ncu_w1_$d.csv" 2>"$OUT/ncu_w1_$d.err"
  note "ncu $d: rc=$?"
  python3 tools/ncu_step_breakdown.py "$OUT/ncu_w1_$d.csv" | tee -a "$OUT/summary.txt"
done

for waves in 1 3; do
  [ "$(left)" -gt 40 ] || { note "W1 min_waves $waves: skipped"; continue; }
  NANOVLLM_DECODE_MIN_WAVES=$waves timeout 60 $B --workload W1 --kv-cache-dtype bf16 int8 \
    --json "$OUT/w1_waves$waves.json" >"$OUT/w1_waves$waves.log" 2>&1
  note "W1 min_waves $waves: rc=$?"
  grep -A3 "kv dtype" "$OUT/w1_waves$waves.log" | tee -a "$OUT/summary.txt"
done
