#!/usr/bin/env bash
# Runs every test: the normal build (CUDA backend compiled when nvcc exists; GPU tests skip
# themselves without a GPU), then the CPU-only engine under AddressSanitizer + UBSan
# (unit and end-to-end tests), then fuzzes the model-file readers for a bounded time.
# NANOVLLM_SKIP_SANITIZE=1 / NANOVLLM_SKIP_FUZZ=1 skip those passes.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
if [ "${NANOVLLM_SKIP_FUZZ:-0}" != 1 ]; then
  bash tests/fuzz/run_fuzz.sh "${NANOVLLM_FUZZ_SECONDS:-30}" build-fuzz >build-fuzz.log 2>&1 ||
    { tail -40 build-fuzz.log; exit 1; }
  echo "fuzz: model readers clean for ${NANOVLLM_FUZZ_SECONDS:-30} s (log: build-fuzz.log)"
fi
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 900

if [ "${NANOVLLM_SKIP_SANITIZE:-0}" != 1 ]; then
  # -O1 without debug info keeps this second build short; only the unit and e2e binaries.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 \
    -DNANOVLLM_SANITIZE=ON -DNANOVLLM_CUDA=OFF >/dev/null
  targets=(test_e2e)
  for dir in tests/unit/*/; do targets+=("test_$(basename "$dir")"); done
  cmake --build build-asan -j "$JOBS" --target "${targets[@]}"
  # OpenBLAS and OpenMP keep thread pools alive at exit: leaks there are not ours.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L "unit|e2e" --timeout 1800
fi
