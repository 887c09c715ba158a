#!/usr/bin/env python3
"""Serving benchmark against a running `nanovllm serve` (or any OpenAI-compatible server):
nano-vllm's benchmark inputs (../shared/bench/nanovllm-bench-seed0.json: prompt token ids and
max_tokens per request) sent as streamed /v1/completions, at most --concurrency in flight, like
`vllm bench serve`. Reports request and output-token throughput, time to first token (TTFT) and
time per output token after the first (TPOT); --json writes them with every request's numbers.

  bench/serve_bench.py --url http://127.0.0.1:8000 [--num-prompts N] [--concurrency C]
      [--inputs FILE] [--vocab-size V] [--prompt-len-cap P] [--max-tokens-cap M] [--model NAME]
      [--json OUT]
The caps and --vocab-size fit the inputs to a small model (a smoke run); leave them out to
measure.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

DEFAULT_INPUTS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / \
    "nanovllm-bench-seed0.json"


def one_request(url, model, prompt_ids, max_tokens, temperature):
    body = {"prompt": prompt_ids, "max_tokens": max_tokens, "temperature": temperature,
            "ignore_eos": True, "stream": True,
            # continuous usage (vLLM's): every chunk counts the tokens so far, so the first token is
            # timed even when its text is held back (an incomplete UTF-8 character, a stop string)
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    if model:
        body["model"] = model
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    first = None
    tokens = 0
    try:
        resp = urllib.request.urlopen(req, timeout=3600)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"HTTP {e.code}: {e.read().decode(errors='replace')}") from None
    with resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"]["message"])
            usage = chunk.get("usage") or {}
            if usage.get("completion_tokens", 0) > 0 or (chunk["choices"] and chunk["choices"][0]["text"]):
                first = first or time.perf_counter()
            if usage:
                tokens = usage["completion_tokens"]
    end = time.perf_counter()
    ttft = (first if first is not None else end) - start
    tpot = (end - start - ttft) / (tokens - 1) if tokens > 1 else 0.0
    return {"latency_s": end - start, "ttft_s": ttft, "tpot_s": tpot, "output_tokens": tokens,
            "prompt_tokens": len(prompt_ids)}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--inputs", default=str(DEFAULT_INPUTS))
    ap.add_argument("--num-prompts", type=int, default=0, help="first N requests (0: all)")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=0,
                    help="fold prompt ids into [0, V) for models with a smaller vocabulary")
    ap.add_argument("--prompt-len-cap", type=int, default=0, help="keep each prompt's first P ids")
    ap.add_argument("--max-tokens-cap", type=int, default=0, help="cap each request's max_tokens")
    ap.add_argument("--temperature", type=float, default=0.6, help="nano-vllm's bench uses 0.6")
    ap.add_argument("--model", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    if a.concurrency < 1:
        sys.exit("serve_bench: --concurrency must be >= 1")
    data = json.loads(pathlib.Path(a.inputs).read_text())
    prompts, max_tokens = data["prompt_token_ids"], data["max_tokens"]
    n = len(prompts) if a.num_prompts <= 0 else min(a.num_prompts, len(prompts))
    jobs = []
    for ids, m in zip(prompts[:n], max_tokens[:n]):
        if a.prompt_len_cap > 0:
            ids = ids[:a.prompt_len_cap]
        if a.vocab_size > 0:
            ids = [i % a.vocab_size for i in ids]
        jobs.append((ids, min(m, a.max_tokens_cap) if a.max_tokens_cap > 0 else m))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
        results = list(pool.map(lambda j: one_request(a.url, a.model, j[0], j[1], a.temperature), jobs))
    duration = time.perf_counter() - start
    out_tokens = sum(r["output_tokens"] for r in results)
    in_tokens = sum(r["prompt_tokens"] for r in results)
    ttft = [r["ttft_s"] for r in results]
    tpot = [r["tpot_s"] for r in results if r["output_tokens"] > 1]
    summary = {
        "url": a.url, "num_requests": n, "concurrency": a.concurrency, "duration_s": duration,
        "input_tokens": in_tokens, "output_tokens": out_tokens,
        "requested_output_tokens": sum(m for _, m in jobs),
        "request_per_s": n / duration, "output_tok_per_s": out_tokens / duration,
        "total_tok_per_s": (in_tokens + out_tokens) / duration,
        "ttft_ms": {"mean": 1e3 * statistics.mean(ttft), "median": 1e3 * statistics.median(ttft),
                    "p99": 1e3 * percentile(ttft, 99)},
        "tpot_ms": {"mean": 1e3 * statistics.mean(tpot) if tpot else 0.0,
                    "median": 1e3 * statistics.median(tpot) if tpot else 0.0,
                    "p99": 1e3 * percentile(tpot, 99) if tpot else 0.0},
    }
    print(f"{n} requests, concurrency {a.concurrency}: {duration:.2f} s, "
          f"{summary['output_tok_per_s']:.1f} output tok/s, {summary['request_per_s']:.2f} req/s; "
          f"TTFT mean {summary['ttft_ms']['mean']:.1f} ms (p99 {summary['ttft_ms']['p99']:.1f}), "
          f"TPOT mean {summary['tpot_ms']['mean']:.2f} ms (p99 {summary['tpot_ms']['p99']:.2f})")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({**summary, "requests": results}, indent=1))


if __name__ == "__main__":
    main()
