"""Random strings tokenized by our C++ tokenizer (tests/tools/tokenize_jsonl) and by Hugging Face
`tokenizers` must give the same ids and the same decoded text, for Qwen3 (byte-level BPE) and
stories260K (SentencePiece BPE with byte fallback)."""
import json
import os
import random
import subprocess
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

SHARED = Path(os.environ.get("NANOVLLM_SHARED_DIR", Path(__file__).resolve().parents[2] / ".." / "shared"))
BINARY_DIR = os.environ.get("NANOVLLM_BINARY_DIR")
TOOL = Path(BINARY_DIR) / "tokenize_jsonl" if BINARY_DIR else None
TOKENIZER_DIRS = {"qwen3": SHARED / "tokenizers" / "qwen3", "stories260K": SHARED / "models" / "stories260K"}
NUM_STRINGS = 300

ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    " " * 8 + "\n\n\t\r",
    "0123456789",
    "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÉÎÕÜßæœøÅ",
    "\u0300\u0301\u0302\u0303\u0308\u0327\u0323",  # combining marks (NFC cases)
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年中文字符",
    "😀😂🚀👍🏽❤️👨‍👩‍👧🇯🇵🦜",
    ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
    "\u00a0\u3000\u2009\u200b\u2028",  # unusual spaces
    "ひらがなカタカナ한국어",
]
SPECIAL_SNIPPETS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "<s>", "</s>", "'s", "'LL"]


def random_strings(seed=20240613):
    rng = random.Random(seed)
    out = []
    for _ in range(NUM_STRINGS):
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.05:
                parts.append(rng.choice(SPECIAL_SNIPPETS))
            else:
                alphabet = rng.choice(ALPHABETS)
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
        out.append("".join(parts))
    return out


def run_tool(tokenizer_dir, texts):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    proc = subprocess.run([str(TOOL), str(tokenizer_dir)], input=lines.encode(), capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    results = [json.loads(line) for line in proc.stdout.decode().split("\n") if line]
    assert len(results) == len(texts)
    return results


@pytest.mark.parametrize("name", sorted(TOKENIZER_DIRS))
def test_random_strings_match_hf(name):
    if TOOL is None or not TOOL.exists():
        pytest.skip(f"tokenize_jsonl binary not found at {TOOL} (build target tokenize_jsonl)")
    directory = TOKENIZER_DIRS[name]
    hf = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    texts = random_strings()
    ours = run_tool(directory, texts)
    mismatches = []
    for text, got in zip(texts, ours):
        assert "error" not in got, got
        expected = hf.encode(text).ids
        if got["ids"] != expected:
            mismatches.append((text, got["ids"], expected))
            continue
        assert got["decoded"] == hf.decode(expected, skip_special_tokens=False), text
        assert got["decoded_skip_special"] == hf.decode(expected, skip_special_tokens=True), text
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ; first: {mismatches[0]!r}"


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_tiny_tokenizer(style, directory):
    """A small byte-level BPE trained here, in the shape of SmolLM2 (Digits + GPT-2 ByteLevel regex)
    or Llama 3 (Split regex, ignore_merges, BOS template)."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, processors, trainers

    special = ["<|begin_of_text|>", "<|im_start|>", "<|im_end|>"]
    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
    if style == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    words = ("the quick brown fox jumps over lazy dog once upon a time there was little girl named lily "
             "she loved to play outside in park hello world it's they'll don't 2024 中文 字符 café").split()
    rng = random.Random(5)
    corpus = random_strings(seed=7) + [" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)]
    tok.train_from_iterator(corpus, trainer)
    if style == "llama3":
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    return tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))


@pytest.mark.parametrize("style", ["smollm", "llama3"])
def test_trained_byte_level_tokenizers_match_hf(style, tmp_path):
    if TOOL is None or not TOOL.exists():
        pytest.skip(f"tokenize_jsonl binary not found at {TOOL} (build target tokenize_jsonl)")
    hf = train_tiny_tokenizer(style, tmp_path / style)
    texts = random_strings(seed=99)[:150] + ["12345 67 and 'LL's", "<|begin_of_text|>hi<|im_end|>",
                                              "once upon a time there was a little girl named Lily, 2024 café 中文字符"]
    ours = run_tool(tmp_path / style, texts)
    for text, got in zip(texts, ours):
        assert "error" not in got, got
        expected = hf.encode(text).ids
        assert got["ids"] == expected, text
        assert got["decoded"] == hf.decode(expected, skip_special_tokens=False), text


def sentencepiece_variant(variant, directory):
    """stories260K's vocab and merges in other shapes HF writes: a Metaspace pre-tokenizer and
    decoder (newer Llama/Mistral conversions) instead of Prepend/Replace, and added tokens with
    lstrip/rstrip, single_word and normalized flags."""
    from tokenizers import AddedToken, decoders, pre_tokenizers

    tok = tokenizers.Tokenizer.from_file(str(TOKENIZER_DIRS["stories260K"] / "tokenizer.json"))
    if variant.startswith("metaspace"):
        scheme, split = ("first", False) if variant == "metaspace_first" else ("always", True)
        tok.normalizer = None
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=split)
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=split)
    else:
        tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False)])
        tok.add_tokens([AddedToken("<sep>", single_word=True, normalized=False),
                        AddedToken("the end", normalized=True, special=False)])
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    return tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))


@pytest.mark.parametrize("variant", ["metaspace_first", "metaspace_always_split", "added_token_flags"])
def test_sentencepiece_variants_match_hf(variant, tmp_path):
    if TOOL is None or not TOOL.exists():
        pytest.skip(f"tokenize_jsonl binary not found at {TOOL} (build target tokenize_jsonl)")
    hf = sentencepiece_variant(variant, tmp_path / variant)
    texts = random_strings(seed=3)[:100] + [
        "Lily saw <mask>  a dog", "x<mask>y", "  <mask>\n", "a <sep> b", "a<sep>b", "<sep>", "that was the end.",
        "  two  spaces  ", "</s>after special", "Hello world"]
    ours = run_tool(tmp_path / variant, texts)
    for text, got in zip(texts, ours):
        assert "error" not in got, got
        expected = hf.encode(text).ids
        assert got["ids"] == expected, text
        assert got["decoded"] == hf.decode(expected, skip_special_tokens=False), text
        assert got["decoded_skip_special"] == hf.decode(expected, skip_special_tokens=True), text


def test_tool_reports_bad_lines():
    if TOOL is None or not TOOL.exists():
        pytest.skip(f"tokenize_jsonl binary not found at {TOOL} (build target tokenize_jsonl)")
    proc = subprocess.run([str(TOOL)], input=b'{"text": "x", "tokenizer_dir": "/nonexistent"}\nnot json\n',
                          capture_output=True, timeout=60)
    results = [json.loads(line) for line in proc.stdout.decode().split("\n") if line]
    assert len(results) == 2
    assert "tokenizer.json" in results[0]["error"]
    assert "error" in results[1]
