"""`nanovllm serve` as a process: it prints where it listens, answers an OpenAI-style request with
llama2.c's reference completion for stories260K (standard-library HTTP client), and exits 0 on
SIGTERM. The routes themselves are tested in tests/unit/server."""
import json
import os
import pathlib
import re
import signal
import subprocess
import urllib.error
import urllib.request

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
