#!/usr/bin/env bash
# Source this on the GPU machine (after or instead of scripts/gpu_env.sh) for a build with
# `nanovllm serve`: also unpacks .deps/serve/ (cpp-httplib and what its pkg-config file requires,
# made here by scripts/fetch_gpu_deps.sh) into the same root. Kept apart from gpu_env.sh so the
# main GPU build never depends on them: configure the server build in a folder of its own.
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
set -e
if [ ! -f "$DEPS_ROOT/.serve_unpacked" ]; then
  for deb in "$(dirname "${BASH_SOURCE[0]}")"/../.deps/serve/*.deb; do dpkg -x "$deb" "$DEPS_ROOT"; done
  # zlib1g-dev's libz.so points at an absolute /lib path; point it at the unpacked zlib1g.
  ln -sf "$DEPS_ROOT/lib/x86_64-linux-gnu/libz.so.1" "$DEPS_ROOT/usr/lib/x86_64-linux-gnu/libz.so"
  touch "$DEPS_ROOT/.serve_unpacked"
fi
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$DEPS_ROOT/lib/x86_64-linux-gnu
export LIBRARY_PATH=$LD_LIBRARY_PATH
set +e
