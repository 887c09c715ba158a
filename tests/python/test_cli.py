"""The `nanovllm` command as a user drives it: help and usage errors, `generate --json` on
stories260K against llama2.c's reference, `tokenize` against Hugging Face tokenizers/transformers
on Qwen3's real tokenizer, `score`, `estimate`, and a malformed model folder."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

BIN = pathlib.Path(os.environ.get("NANOVLLM_BINARY_DIR", "build")) / "nanovllm"
SHARED = pathlib.Path(os.environ.get("NANOVLLM_SHARED_DIR", "../shared"))
STORIES = SHARED / "models" / "stories260K"
QWEN3_TOK = SHARED / "tokenizers" / "qwen3"
SUBCOMMANDS = ("generate", "tokenize", "score", "eval", "estimate", "bench", "serve")


def nanovllm(*args, timeout=300):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def references():
    return json.loads((STORIES / "reference.json").read_text())


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_help_of_every_subcommand(sub):
    r = nanovllm(sub, "--help")
    assert r.returncode == 0, r.stderr
    assert "--help" in r.stdout and sub in r.stdout


def test_top_level_help_lists_the_subcommands():
    r = nanovllm("--help")
    assert r.returncode == 0
    for sub in SUBCOMMANDS:
        assert sub in r.stdout


@pytest.mark.parametrize("args", [
    ["generate", "--model", STORIES, "--no-such-flag", "Zoo"],
    ["generate", "--model", STORIES, "--temperature", "-1", "Zoo"],
    ["generate", "--model", STORIES, "--temperature", "warm", "Zoo"],
    ["generate", "--model", STORIES, "--kv-cache-dtype", "int3", "Zoo"],
    ["generate", "--model", STORIES, "--max-tokens", "0", "Zoo"],
    ["generate", "--model", STORIES, "--device", "tpu", "Zoo"],
    ["generate", "--model", STORIES, "--top-p", "1.5", "Zoo"],
    ["generate", "Zoo"],  # neither --model nor --preset
    ["score", "--model", STORIES, "--kv-cache-dtype", "int3", "Zoo"],
    ["tokenize", "--model", QWEN3_TOK, "--bogus", "hi"],
    ["tokenize", "hi"],  # --model is required
    ["estimate", "--preset", "qwen3-0.6b", "--kv-cache-dtype", "int3", "--blocks", "5"],
    ["eval", "--model", STORIES, "--kv-cache-dtype", "int3"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2_with_one_line(args):
    r = nanovllm(*args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert len(r.stderr) < 300, r.stderr  # a message a person reads, not a dump
    assert r.stdout == ""


def test_generate_json_prints_one_object_per_prompt_and_nothing_else(tmp_path):
    refs = references()[:4:2]  # "Zoo" and "Once upon a time", 60 steps
    ids_file = tmp_path / "prompts.jsonl"
    ids_file.write_text("".join(json.dumps(r["prompt_ids"]) + "\n" for r in refs))
    n = max(len(r["output_ids"]) for r in refs)
    r = nanovllm("generate", "--model", STORIES, "--device", "cpu", "--temperature", "0",
                 "--ignore-eos", "--max-tokens", n, "--prompt-ids-file", ids_file, "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, r.stdout
    for line, ref in zip(lines, refs):
        obj = json.loads(line)
        assert set(obj) == {"prompt_token_ids", "text", "token_ids", "finish_reason"}
        assert obj["prompt_token_ids"] == ref["prompt_ids"]
        k = len(ref["output_ids"])
        assert obj["token_ids"][:k] == ref["output_ids"]
        assert len(obj["token_ids"]) == n
        assert obj["text"].startswith(ref["completion_text"])
        assert obj["finish_reason"] == "length"


def test_generate_logprobs_agree_with_score():
    """generate --logprobs: each token's log-probability is the one `score` (a teacher-forced
    pass) gives the same token after the same text; greedy picks the most likely."""
    ref = references()[0]
    ids_path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"lp_ids_{os.getpid()}.jsonl"
    ids_path.write_text(json.dumps(ref["prompt_ids"]) + "\n")
    r = nanovllm("generate", "--model", STORIES, "--device", "cpu", "--temperature", "0",
                 "--max-tokens", 8, "--logprobs", 2, "--prompt-ids-file", ids_path, "--json")
    ids_path.unlink()
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert len(obj["logprobs"]) == len(obj["token_ids"]) == 8
    for tok, lp in zip(obj["token_ids"], obj["logprobs"]):
        assert lp["top"][0][0] == tok and abs(lp["top"][0][1] - lp["logprob"]) < 1e-6
        assert len(lp["top"]) == 2 and lp["top"][1][1] <= lp["logprob"]
    text = ref["prompt"] + obj["text"]
    scored = nanovllm("score", "--model", STORIES, "--device", "cpu", text)
    assert scored.returncode == 0, scored.stderr
    s = json.loads(scored.stdout)
    assert s["ids"] == ref["prompt_ids"] + obj["token_ids"]  # the text tokenizes back the same
    n = len(ref["prompt_ids"])
    for k, lp in enumerate(obj["logprobs"]):
        assert abs(s["logprobs"][n + k] - lp["logprob"]) < 1e-4, k
    assert nanovllm("generate", "--model", STORIES, "--logprobs", 21, "Zoo").returncode == 2


def test_generate_text_prompts_and_stop_string():
    ref = references()[0]
    r = nanovllm("generate", "--model", STORIES, "--device", "cpu", "--temperature", "0",
                 "--ignore-eos", "--max-tokens", len(ref["output_ids"]), "--json",
                 ref["prompt"], "Lily and Ben")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(objs) == 2
    assert objs[0]["token_ids"] == ref["output_ids"]
    assert objs[0]["text"] == ref["completion_text"]
    r = nanovllm("generate", "--model", STORIES, "--device", "cpu", "--temperature", "0",
                 "--ignore-eos", "--max-tokens", 50, "--stop", "Lily", "--json", ref["prompt"])
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["finish_reason"] == "stop"
    assert obj["text"] == ref["completion_text"].split("Lily")[0]


def test_kv_quant_switch_is_the_int8_cache():
    def run(*flags):
        return nanovllm("generate", "--model", STORIES, "--device", "cpu", "--temperature", "0",
                        "--ignore-eos", "--max-tokens", 12, "--json", *flags, "Once upon a time")
    switch, dtype = run("--kv-quant"), run("--kv-cache-dtype", "int8")
    assert switch.returncode == 0 and dtype.returncode == 0, switch.stderr + dtype.stderr
    assert ", int8, " in switch.stderr  # the engine's KV cache line
    assert json.loads(switch.stdout)["token_ids"] == json.loads(dtype.stdout)["token_ids"]
    both = run("--kv-quant", "--kv-cache-dtype", "bf16")
    assert both.returncode != 0 and "kv_quant" in both.stderr and both.stdout == ""


def test_generate_seeded_sampling_is_reproducible():
    args = ["generate", "--model", STORIES, "--device", "cpu", "--temperature", "0.8",
            "--seed", "42", "--max-tokens", "30", "--ignore-eos", "--json", "Zoo"]
    a, b = nanovllm(*args), nanovllm(*args)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    c = nanovllm(*args[:-4], "43", *args[-3:])
    assert json.loads(c.stdout)["token_ids"] != json.loads(a.stdout)["token_ids"]


TEXTS = ["hello world", "  two  spaces\tand a tab\n", "Qwen3 数字 12345 🙂 café",
         "def f(x):\n    return x**2  # comment", "<|im_start|>user\nhi<|im_end|>"]


@pytest.mark.parametrize("text", TEXTS)
def test_tokenize_matches_hf_tokenizers(text):
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.Tokenizer.from_file(str(QWEN3_TOK / "tokenizer.json"))
    r = nanovllm("tokenize", "--model", QWEN3_TOK, text)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj == {"text": text, "ids": hf.encode(text).ids}


@pytest.mark.parametrize("thinking", [True, False])
def test_tokenize_chat_matches_transformers_chat_template(thinking):
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(QWEN3_TOK))
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hello world"},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "2 + 2 = ?"}]
    expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                       enable_thinking=thinking)
    args = ["tokenize", "--model", QWEN3_TOK, "--chat", json.dumps(messages)]
    if not thinking:
        args.insert(-1, "--no-thinking")
    r = nanovllm(*args)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["text"] == expected
    assert obj["ids"] == tok(expected, add_special_tokens=False)["input_ids"]
    assert ("<think>\n\n</think>" in obj["text"]) == (not thinking)


def test_score_prints_ids_and_logprobs_with_null_first():
    ref = references()[1]
    story = ref["prompt"] + ref["completion_text"]  # the model's own greedy text
    r = nanovllm("score", "--model", STORIES, "--device", "cpu", story)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert set(obj) == {"ids", "logprobs"}
    assert obj["ids"][:len(ref["prompt_ids"])] == ref["prompt_ids"]
    assert len(obj["logprobs"]) == len(obj["ids"])
    assert obj["logprobs"][0] is None
    assert all(isinstance(x, float) and x <= 0 for x in obj["logprobs"][1:])
    # The model's own greedy story is far more likely than the same words shuffled.
    words = story.split(" ")
    shuffled = " ".join(words[1::2] + words[0::2])
    s = json.loads(nanovllm("score", "--model", STORIES, "--device", "cpu", shuffled).stdout)
    mean = lambda lp: sum(lp[1:]) / (len(lp) - 1)
    assert mean(obj["logprobs"]) > mean(s["logprobs"]) + 0.5


def test_estimate_prints_the_proposals_figures():
    r = nanovllm("estimate", "--preset", "qwen3-0.6b", "--kv-cache-dtype", "int8",
                 "--blocks", "500", "--block-size", "256")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    assert "14,000.0" in r.stdout  # the model-dtype (bf16) baseline
    assert "7,218.75" in rows["int8"] and "48.4%" in rows["int8"]
    assert "59,136" in rows["int8"]  # bytes per token: 28 x 2 x 8 x (128 + 4 scale bytes)


def test_malformed_model_folder_exits_1_naming_the_file(tmp_path):
    bad = tmp_path / "model"
    shutil.copytree(STORIES, bad)
    (bad / "config.json").write_text("{ not json")
    r = nanovllm("generate", "--model", bad, "--device", "cpu", "--json", "Zoo")
    assert r.returncode == 1
    assert str(bad / "config.json") in r.stderr
    assert r.stdout == ""
    (bad / "config.json").write_text((STORIES / "config.json").read_text())
    with open(bad / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    r = nanovllm("score", "--model", bad, "--device", "cpu", "Zoo")
    assert r.returncode == 1
    assert "model.safetensors" in r.stderr
    r = nanovllm("generate", "--model", tmp_path / "absent", "Zoo")
    assert r.returncode == 1 and str(tmp_path / "absent") in r.stderr
