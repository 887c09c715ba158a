"""`nanovllm estimate` and `nanovllm bench` driven as a user would: the proposal's figures, the
W1 dump against nano-vllm's seed-0 file, a quick CPU side-by-side run, and usage errors."""
import json
import os
import pathlib
import subprocess

import pytest

BIN = pathlib.Path(os.environ.get("NANOVLLM_BINARY_DIR", "build")) / "nanovllm"
SHARED = pathlib.Path(os.environ.get("NANOVLLM_SHARED_DIR", "../shared"))


def nanovllm(*args, timeout=600):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=timeout)


def test_estimate_prints_the_proposals_figures():
    r = nanovllm("estimate", "--preset", "qwen3-0.6b", "--kv-cache-dtype", "bf16,int8",
                 "--blocks", "500", "--block-size", "256", "--seq-len", "2048")
    assert r.returncode == 0, r.stderr
    bf16 = next(line for line in r.stdout.splitlines() if line.startswith("bf16"))
    int8 = next(line for line in r.stdout.splitlines() if line.startswith("int8"))
    assert "114,688" in bf16 and "14,000.0" in bf16 and "0.0%" in bf16
    assert "59,136" in int8 and "7,218.75" in int8 and "48.4%" in int8


def test_estimate_json_and_memory_budget():
    r = nanovllm("estimate", "--preset", "qwen3-0.6b", "--kv-cache-dtype", "bf16,int8,int4",
                 "--memory", "8", "--seq-len", "2048", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    blocks = {x["kv_cache_dtype"]: x["num_blocks"] for x in j["results"]}
    assert blocks["bf16"] == (8 << 30) // (16 * 114688)
    assert blocks["int8"] / blocks["bf16"] >= 1.93 and blocks["int4"] / blocks["bf16"] >= 3.6
    fits = {x["kv_cache_dtype"]: x["sequences_that_fit"] for x in j["results"]}
    assert fits["bf16"] == blocks["bf16"] // 128


def test_usage_errors_exit_2_with_one_line():
    for args in (["estimate", "--preset", "qwen3-0.6b", "--kv-cache-dtype", "int3", "--blocks", "5"],
                 ["estimate", "--preset", "qwen3-0.6b"],  # neither --blocks nor --memory
                 ["estimate", "--preset", "qwen3-0.6b", "--blocks", "5", "--memory", "1"],
                 ["bench", "--preset", "qwen3-tiny", "--workload", "W9"],
                 ["bench", "--preset", "qwen3-tiny"]):
        r = nanovllm(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_unknown_model_folder_is_a_clear_error(tmp_path):
    r = nanovllm("estimate", "--model", str(tmp_path / "missing"), "--blocks", "5")
    assert r.returncode == 1 and str(tmp_path / "missing") in r.stderr


def test_dump_workload_w1_is_nano_vllm_seed0(tmp_path):
    out = tmp_path / "w1.json"
    r = nanovllm("bench", "--workload", "W1", "--dump-workload", str(out))
    assert r.returncode == 0, r.stderr
    ours = json.loads(out.read_text())
    ref = json.loads((SHARED / "bench" / "nanovllm-bench-seed0.json").read_text())
    for key in ("prompt_token_ids", "max_tokens", "num_input_tokens", "num_output_tokens"):
        assert ours[key] == ref[key], key


def test_bench_runs_two_dtypes_side_by_side_on_cpu(tmp_path):
    out = tmp_path / "w4.json"
    # llama-tiny (512-token vocabulary: the workload's ids are taken modulo 512) keeps this quick.
    r = nanovllm("bench", "--preset", "llama-tiny", "--load-format", "dummy", "--device", "cpu",
                 "--workload", "W4", "--kv-cache-dtype", "auto,int8", "--num-kvcache-blocks", "64",
                 "--json", str(out))
    assert r.returncode == 0, r.stderr
    j = json.loads(out.read_text())
    assert j["workload"] == "W4" and j["engine_commit"]
    assert [x["kv_cache_dtype"] for x in j["results"]] == ["f32", "int8"]  # auto: the model dtype
    for x in j["results"]:
        assert x["device"] == "cpu" and x["device_name"] == "cpu"
        assert x["output_tokens"] == 128 and x["wall_s"] > 0 and x["output_tok_per_s"] > 0
        assert x["num_kv_blocks"] == 64 and x["ms_per_output_token"] > 0
        # decode time per decode step: the 127 steps after the prefill fit inside the wall time
        assert x["ms_per_output_token"] * 127 == pytest.approx(x["decode_s"] * 1e3)
        assert x["ms_per_output_token"] * 127 < x["wall_s"] * 1e3
        assert 0 < x["roofline_efficiency"] < 1
    f32, int8 = j["results"]
    assert int8["kv_bytes_per_token"] == 4 * 2 * 4 * (32 + 4)  # layers x (K, V) x heads x (dim + scale)
    assert f32["kv_bytes_per_token"] == 4 * 2 * 4 * 32 * 4
    assert "x tok/s" in r.stdout and "int8" in r.stdout


def test_bench_repeat_times_every_run_without_prefix_cache_hits(tmp_path):
    out = tmp_path / "w4.json"
    r = nanovllm("bench", "--preset", "llama-tiny", "--load-format", "dummy", "--device", "cpu",
                 "--workload", "W4", "--kv-cache-dtype", "int8", "--num-kvcache-blocks", "64",
                 "--repeat", "3", "--json", str(out))
    assert r.returncode == 0, r.stderr
    x = json.loads(out.read_text())["results"][0]
    runs = x["runs"]
    assert len(runs) == 3
    # the same 512-token prompt three times: each run computes it (the cache is reset before each)
    assert all(run["cached_prompt_tokens"] == 0 for run in runs), runs
    assert x["cached_prompt_tokens"] == 0 and x["prompt_tokens"] == 512
    walls = sorted(run["wall_s"] for run in runs)
    assert x["wall_s"] == walls[1]  # the headline is the median run
    assert "3 runs, wall s" in r.stdout


def test_bench_repeat_must_be_positive():
    r = nanovllm("bench", "--preset", "llama-tiny", "--workload", "W4", "--repeat", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
