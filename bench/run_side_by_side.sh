#!/usr/bin/env bash
# Runs the transformers peer and `nanovllm bench` back to back on the same GPU, same workload,
# same random-weight Qwen3-0.6B shapes, and prints both with the ratio.
#
#   bench/run_side_by_side.sh [W2 W4]        (default: W2 W4)
#   env: NANOVLLM (default build/nanovllm), OUT_DIR (default bench_out/<UTC date>),
#        KV_DTYPES (default bf16,int8), EXTRA_ARGS (more `nanovllm bench` flags, e.g. --num-prompts 8)
set -euo pipefail
cd "$(dirname "$0")/.."
NANOVLLM=${NANOVLLM:-build/nanovllm}
OUT_DIR=${OUT_DIR:-bench_out/$(date -u +%Y%m%dT%H%M%SZ)}
KV_DTYPES=${KV_DTYPES:-bf16,int8}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -eq 0 ] && WORKLOADS=(W2 W4)
mkdir -p "$OUT_DIR"

for w in "${WORKLOADS[@]}"; do
  peer_json="$OUT_DIR/transformers-$w.json"
  ours_json="$OUT_DIR/nanovllm-$w.json"
  echo "== $w: transformers peer" >&2
  python3 bench/peers/transformers_peer.py --workload "$w" --json "$peer_json" >/dev/null
  echo "== $w: nanovllm bench" >&2
  # shellcheck disable=SC2086
  "$NANOVLLM" bench --preset qwen3-0.6b --load-format dummy --workload "$w" \
    --kv-cache-dtype "$KV_DTYPES" --json "$ours_json" ${EXTRA_ARGS:-}
  python3 - "$w" "$peer_json" "$ours_json" <<'PY'
import json, sys
w, peer_path, ours_path = sys.argv[1:]
peer, ours = json.load(open(peer_path)), json.load(open(ours_path))
print(f"\n{w} side by side (nanovllm commit {ours['engine_commit']}, {peer.get('gpu', '?')})")
if not peer.get("supported", True):
    print(f"  transformers: cannot run {w} ({peer.get('reason', '')})")
latency = w == "W4"
unit = "ms/token" if latency else "output tok/s"
key = "ms_per_output_token" if latency else "output_tok_per_s"
if peer.get("supported", True):
    print(f"  {'transformers bf16':24s} {peer[key]:12,.3f} {unit}  (seqs {peer['num_seqs']}, wall {peer['wall_s']:.3f} s)")
for r in ours["results"]:
    v = r.get(key)
    if v is None:
        print(f"  nanovllm {r['kv_cache_dtype']:15s} no {unit} measured")
        continue
    line = f"  nanovllm {r['kv_cache_dtype']:15s} {v:12,.3f} {unit}  (seqs {r['num_seqs']}, wall {r['wall_s']:.3f} s)"
    if peer.get("supported", True) and peer.get(key) and v:
        # ratio > 1 means nanovllm is better: faster throughput or fewer ms per token
        line += f"  {(peer[key] / v) if latency else (v / peer[key]):.2f}x vs transformers"
        if peer["num_seqs"] != r["num_seqs"]:
            line += " (different number of sequences!)"
    print(line)
PY
done
echo "results in $OUT_DIR" >&2
