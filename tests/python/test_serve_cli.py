"""`nanovllm serve` as a process: it prints where it listens, answers OpenAI-style requests with
llama2.c's reference completions for stories260K (through the standard library's HTTP client and
through OpenAI's own Python client, whole and streamed), and exits 0 on SIGTERM. The routes
themselves are tested in tests/unit/server."""
import json
import os
import pathlib
import re
import signal
import subprocess
import urllib.error
import urllib.request

import openai
import pytest

BIN = pathlib.Path(os.environ.get("NANOVLLM_BINARY_DIR", "build")) / "nanovllm"
SHARED = pathlib.Path(os.environ.get("NANOVLLM_SHARED_DIR", "../shared"))
STORIES = SHARED / "models" / "stories260K"


def start_server(*extra):
    proc = subprocess.Popen([str(BIN), "serve", "--model", str(STORIES), "--device", "cpu",
                             "--port", "0", "--num-kvcache-blocks", "256", *extra],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"on http://([\d.]+):(\d+)", line)
        if m:
            return proc, f"http://{m.group(1)}:{m.group(2)}"
    proc.wait(timeout=30)
    raise AssertionError(f"serve exited with {proc.returncode} before listening")


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_answers_and_stops_on_sigterm():
    ref = json.loads((STORIES / "reference.json").read_text())[0]
    proc, base = start_server("--served-model-name", "stories")
    try:
        status, body = post(base + "/v1/completions",
                            {"model": "stories", "prompt": ref["prompt"], "temperature": 0,
                             "max_tokens": len(ref["output_ids"])})
        assert status == 200, body
        assert body["choices"][0]["text"] == ref["completion_text"]
        status, body = post(base + "/v1/completions", {"model": "stories", "prompt": "x", "top_k": -5})
        assert status == 400 and body["error"]["param"] == "top_k", body
        with urllib.request.urlopen(base + "/v1/models", timeout=30) as r:
            assert json.loads(r.read())["data"][0]["id"] == "stories"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    assert rc == 0


def test_serve_refuses_a_port_in_use():
    proc, base = start_server()
    try:
        port = base.rsplit(":", 1)[1]
        r = subprocess.run([str(BIN), "serve", "--model", str(STORIES), "--device", "cpu",
                            "--num-kvcache-blocks", "256", "--port", port],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1
        assert "cannot listen" in r.stderr and port in r.stderr, r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_the_official_openai_client_works_against_it():
    refs = json.loads((STORIES / "reference.json").read_text())
    proc, base = start_server("--served-model-name", "stories")
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused")
        assert [m.id for m in client.models.list()] == ["stories"]
        for ref in refs[::2]:
            done = client.completions.create(model="stories", prompt=ref["prompt"], temperature=0,
                                             max_tokens=len(ref["output_ids"]))
            assert done.choices[0].text == ref["completion_text"]
            assert done.choices[0].finish_reason == "length"
            assert done.usage.prompt_tokens == len(ref["prompt_ids"])
            assert done.usage.completion_tokens == len(ref["output_ids"])
            streamed = client.completions.create(model="stories", prompt=ref["prompt_ids"],
                                                 temperature=0, max_tokens=len(ref["output_ids"]),
                                                 stream=True)
            assert "".join(c.choices[0].text for c in streamed) == ref["completion_text"]
        chat = client.chat.completions.create(
            model="stories", messages=[{"role": "user", "content": "Once upon a time"}],
            temperature=0, max_tokens=10)
        assert chat.choices[0].message.role == "assistant"
        chunks = list(client.chat.completions.create(
            model="stories", messages=[{"role": "user", "content": "Once upon a time"}],
            temperature=0, max_tokens=10, stream=True, stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
            chat.choices[0].message.content
        assert chunks[-1].usage.completion_tokens == 10
        with_lp = client.completions.create(model="stories", prompt=refs[0]["prompt"], temperature=0,
                                            max_tokens=6, logprobs=2)
        lp = with_lp.choices[0].logprobs
        assert len(lp.token_logprobs) == 6 and len(lp.top_logprobs[0]) == 2
        assert "".join(lp.tokens) == with_lp.choices[0].text
        chat_lp = client.chat.completions.create(
            model="stories", messages=[{"role": "user", "content": "Zoo"}], temperature=0,
            max_tokens=3, logprobs=True, top_logprobs=2)
        content = chat_lp.choices[0].logprobs.content
        assert len(content) == 3 and len(content[0].top_logprobs) == 2
        assert content[0].top_logprobs[0].logprob == content[0].logprob
        # lm-evaluation-harness's loglikelihood request: echo + logprobs, the prompt's scores
        scored = client.completions.create(model="stories", prompt=refs[0]["prompt"], echo=True,
                                           logprobs=1, max_tokens=1, temperature=0)
        lp = scored.choices[0].logprobs
        assert scored.choices[0].text.startswith(refs[0]["prompt"])
        assert lp.token_logprobs[0] is None and len(lp.token_logprobs) == len(refs[0]["prompt_ids"]) + 1
        assert all(v is not None and v <= 0 for v in lp.token_logprobs[1:])
        with pytest.raises(openai.BadRequestError) as bad:
            client.completions.create(model="stories", prompt="x", top_p=3)
        assert "top_p" in str(bad.value)
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model="gpt-4", prompt="x")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_serve_bench_smoke():
    """bench/serve_bench.py end to end on stories260K (inputs folded into its vocabulary and
    context): every request streams its full max_tokens (ignore_eos) and the summary adds up."""
    bench = pathlib.Path(__file__).resolve().parents[2] / "bench" / "serve_bench.py"
    proc, base = start_server()
    try:
        out = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_bench_{os.getpid()}.json"
        r = subprocess.run(["python3", str(bench), "--url", base, "--inputs",
                            str(SHARED / "bench" / "nanovllm-bench-seed0.json"), "--num-prompts", "24",
                            "--concurrency", "8", "--vocab-size", "512", "--prompt-len-cap", "200",
                            "--max-tokens-cap", "40", "--json", str(out)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        summary = json.loads(out.read_text())
        out.unlink()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert summary["num_requests"] == 24 and len(summary["requests"]) == 24
    assert summary["output_tokens"] == summary["requested_output_tokens"]
    assert all(0 < q["ttft_s"] <= q["latency_s"] for q in summary["requests"])
    assert abs(summary["output_tok_per_s"] * summary["duration_s"] - summary["output_tokens"]) < 1e-6 * summary["output_tokens"] + 1e-6
    assert "output tok/s" in r.stdout
