#!/usr/bin/env bash
# Runs every test: the normal build (CUDA backend compiled when nvcc exists; GPU tests skip
# themselves without a GPU) and its tests, with the model-file readers fuzzed for a bounded time
# beside them, then the CPU-only engine under AddressSanitizer + UBSan (unit and end-to-end tests).
# NANOVLLM_SKIP_SANITIZE=1 / NANOVLLM_SKIP_FUZZ=1 skip those passes.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
# Ninja where installed (scripts/install.sh installs it): it schedules every target's objects in
# one pool, where make waits for each library before compiling its dependents. A build folder
# keeps the generator it was first configured with.
generator() { if [ ! -f "$1/CMakeCache.txt" ] && command -v ninja >/dev/null; then echo -GNinja; fi; }

cmake -S . -B build $(generator build) -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
# The fuzzer builds and runs beside the Release tests, which leave a core idle much of the time.
fuzz_pid=""
if [ "${NANOVLLM_SKIP_FUZZ:-0}" != 1 ]; then
  bash tests/fuzz/run_fuzz.sh "${NANOVLLM_FUZZ_SECONDS:-30}" build-fuzz >build-fuzz.log 2>&1 &
  fuzz_pid=$!
fi
ctest_rc=0
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 900 || ctest_rc=$?
if [ -n "$fuzz_pid" ]; then
  wait "$fuzz_pid" || { tail -40 build-fuzz.log; echo "fuzz: FAILED (log: build-fuzz.log)"; exit 1; }
  echo "fuzz: model readers clean for ${NANOVLLM_FUZZ_SECONDS:-30} s (log: build-fuzz.log)"
fi
[ "$ctest_rc" = 0 ] || exit "$ctest_rc"

if [ "${NANOVLLM_SKIP_SANITIZE:-0}" != 1 ]; then
  # Only the unit and e2e binaries, and only what they link. The libraries build at -O1 without
  # debug info (the tests run in about a minute); the test sources at -O0 (NANOVLLM_TEST_OPT_FLAGS,
  # half their ASan + UBSan code generation, ~10 s more test time). Unity builds compile each
  # target's sources as a few large files: the gtest, nlohmann::json and standard-library code they
  # all instantiate is compiled once per batch, not once per file (about half the build time).
  cmake -S . -B build-asan $(generator build-asan) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -DNANOVLLM_TEST_OPT_FLAGS=-O0 -DCMAKE_UNITY_BUILD=ON \
    -DNANOVLLM_SANITIZE=ON -DNANOVLLM_CUDA=OFF >/dev/null
  targets=(test_e2e)
  for dir in tests/unit/*/; do targets+=("test_$(basename "$dir")"); done
  cmake --build build-asan -j "$JOBS" --target "${targets[@]}"
  # OpenBLAS and OpenMP keep thread pools alive at exit: leaks there are not ours.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L "unit|e2e" --timeout 1800
fi
