#!/usr/bin/env bash
# Builds the libFuzzer target over the safetensors / GGUF / config.json readers and the server's
# request parser with ASan+UBSan
# (clang-14) and runs it for a bounded time. Exits non-zero when the fuzzer finds a crash, leak,
# timeout or sanitizer report; the reproducer is left in the build folder.
# Usage: tests/fuzz/run_fuzz.sh [seconds=60] [build folder=build-fuzz]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
OUT=${2:-build-fuzz}
CXX=${FUZZ_CXX:-clang++-14}
mkdir -p "$OUT/corpus"

SOURCES=(src/model/mapped_file.cpp src/model/safetensors.cpp src/model/gguf.cpp src/model/gguf_dequant.cpp
         src/model/gguf_weights.cpp src/model/model_config.cpp src/model/tensor_names.cpp src/core/dtype.cpp
         src/server/openai_request.cpp src/engine/sampling_params.cpp tests/fuzz/fuzz_model_readers.cpp)
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -Wno-unknown-pragmas
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Iinclude)
# One compile per source, $(nproc) at a time (one clang call for all of them used a single core),
# then one link.
rm -rf "$OUT/obj"
OBJECTS=()
for src in "${SOURCES[@]}"; do mkdir -p "$OUT/obj/$(dirname "$src")"; OBJECTS+=("$OUT/obj/$src.o"); done
printf '%s\n' "${SOURCES[@]}" |
  xargs -P "${FUZZ_JOBS:-$(nproc)}" -I{} "$CXX" "${FLAGS[@]}" -c {} -o "$OUT/obj/{}.o"
"$CXX" "${FLAGS[@]}" "${OBJECTS[@]}" -o "$OUT/fuzz_model_readers"

# Seeds: a GGUF holding every supported tensor type, a small safetensors file, a config.json.
cp tests/fixtures/gguf/dequant_reference.gguf "$OUT/corpus/seed.gguf"
python3 - "$OUT/corpus" <<'PY' || echo "run_fuzz.sh: python seeds skipped"
import json, struct, sys
out = sys.argv[1]
header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
          "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
          "c": {"dtype": "F16", "shape": [2], "data_offsets": [32, 36]}}
h = json.dumps(header).encode()
with open(f"{out}/seed_request.json", "w") as f:
    json.dump({"model": "m", "prompt": ["a", [1, 2]], "max_tokens": 4, "temperature": 0.5, "top_p": 0.9,
               "top_k": 3, "seed": 1, "stop": ["x"], "stop_token_ids": [2], "n": 2, "logprobs": 1,
               "echo": True, "stream": True, "stream_options": {"include_usage": True},
               "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
               "chat_template_kwargs": {"enable_thinking": False}, "top_logprobs": 1}, f)
with open(f"{out}/seed.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + bytes(range(36)))
cfg = {"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
       "vocab_size": 100, "max_position_embeddings": 128, "rope_scaling": {"rope_type": "llama3",
       "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}
with open(f"{out}/seed_config.json", "w") as f:
    json.dump(cfg, f)
PY

cd "$OUT"
./fuzz_model_readers -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 corpus
