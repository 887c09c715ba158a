#!/usr/bin/env bash
# Here (with apt): downloads the Debian packages the build needs into .deps/ so a GPU machine
# without registries can unpack them (scripts/gpu_env.sh). .deps/ is git-ignored and carried.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps && cd .deps
apt-get download nlohmann-json3-dev libxxhash-dev libxxhash0 libcli11-dev libpcre2-dev libpcre2-8-0 \
  libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2 libopenblas-dev libopenblas0 \
  libopenblas0-openmp libopenblas-openmp-dev libgtest-dev libgmock-dev libblas3 liblapack3 libgfortran5
# `nanovllm serve` (scripts/gpu_serve_env.sh unpacks these only for its own build folder).
mkdir -p serve && cd serve
apt-get download libcpp-httplib-dev libcpp-httplib0.11 libssl-dev libssl3 zlib1g-dev zlib1g libbrotli-dev libbrotli1
