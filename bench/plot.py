#!/usr/bin/env python3
"""Plots `nanovllm bench --json` results: throughput and roofline efficiency per KV dtype per
workload (and W5 capacity), as PNG files.

  python3 bench/plot.py [--results docs/bench_results] [--out DIR]

Reads every *.json under --results that `nanovllm bench` wrote (others, e.g. peer results, are
skipped); for each (workload, KV dtype) the newest result (date_utc) is plotted. Writes
throughput.png, roofline_efficiency.png and, when W5 results exist, capacity.png into --out
(default: the results folder).
"""
import argparse
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DTYPE_ORDER = ["f32", "bf16", "fp16", "fp8_e4m3", "int8", "int4"]


def load_results(folder):
    """{(workload, kv dtype): (date, result, report)} keeping the newest per key."""
    newest = {}
    for path in sorted(pathlib.Path(folder).rglob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"plot.py: skipping {path}: {e}", file=sys.stderr)
            continue
        if not isinstance(report, dict) or "engine_commit" not in report or "results" not in report:
            continue
        for r in report["results"]:
            key = (report["workload"], r["kv_cache_dtype"])
            date = report.get("date_utc", "")
            if key not in newest or date >= newest[key][0]:
                newest[key] = (date, r, report)
    return newest


def grouped_bars(newest, value, ylabel, title, path, workloads):
    dtypes = sorted({d for (_, d) in newest}, key=lambda d: (DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 99, d))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(workloads), 4))
    width = 0.8 / max(1, len(dtypes))
    for i, d in enumerate(dtypes):
        xs, ys = [], []
        for j, w in enumerate(workloads):
            if (w, d) in newest and value(newest[(w, d)][1]) is not None:
                xs.append(j + (i - (len(dtypes) - 1) / 2) * width)
                ys.append(value(newest[(w, d)][1]))
        bars = ax.bar(xs, ys, width, label=d)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel(ylabel)
    commits = sorted({newest[k][2]["engine_commit"] for k in newest if k[0] in workloads})
    ax.set_title(f"{title}\ncommit {', '.join(commits)}", fontsize=10)
    ax.legend(title="KV dtype")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="docs/bench_results")
    p.add_argument("--out")
    a = p.parse_args()
    newest = load_results(a.results)
    if not newest:
        print(f"plot.py: no nanovllm bench results under {a.results}", file=sys.stderr)
        return 1
    out = pathlib.Path(a.out or a.results)
    out.mkdir(parents=True, exist_ok=True)
    timed = sorted({w for (w, _) in newest if w != "W5"})
    if timed:
        grouped_bars(newest, lambda r: r.get("output_tok_per_s"), "output tokens / s",
                     "Throughput per KV dtype", out / "throughput.png", timed)
        grouped_bars(newest, lambda r: 100 * r["roofline_efficiency"] if "roofline_efficiency" in r else None,
                     "roofline efficiency (%)", "Roofline efficiency (floor / measured)",
                     out / "roofline_efficiency.png", timed)
    if any(w == "W5" for (w, _) in newest):
        grouped_bars(newest, lambda r: r.get("capacity_sequences"), "resident sequences",
                     "W5: 2,048-token sequences in the KV budget", out / "capacity.png", ["W5"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
