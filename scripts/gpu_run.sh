#!/usr/bin/env bash
# On a GPU machine: build with the CUDA backend, run the GPU tests (ctest -L gpu), the op tests
# under compute-sanitizer memcheck, and the benchmark if the build has one. Every log goes to
# OUTDIR (default ./gpu-out); the summary is printed last. Budget: under 8 minutes on an H200.
#
#   scripts/gpu_run.sh OUTDIR
#
# Dev packages missing there (no apt) come from .deps/ through scripts/gpu_env.sh. If the full
# CMake build fails (some module not compiling), the GPU op tests are still built on their own
# (core + cpu backend + cuda backend + tests/gpu) with nvcc/g++ directly.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-gpu-out}" && cd "${1:-gpu-out}" && pwd)
JOBS=$(nproc)
ARCH=${NANOVLLM_CUDA_ARCHITECTURES:-90a}
START=$(date +%s)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }

{
  nvidia-smi || true
  nvcc --version || true
  cmake --version || true
  echo "--- dev packages"
  ls -d /usr/include/nlohmann /usr/include/CLI /usr/include/gtest 2>&1
  command -v pkg-config || echo "no pkg-config"
  dpkg -l 2>/dev/null | grep -E 'openblas|gtest|pcre2|utf8proc|xxhash|nlohmann|cli11' || true
} >"$OUT/env.log" 2>&1

# The GPU image has nlohmann, CLI11, gtest and OpenBLAS dev files but (2026-11) not the pcre2,
# utf8proc and xxhash ones.
if ! pkg-config --exists libpcre2-8 libutf8proc libxxhash 2>/dev/null || [ ! -d /usr/include/nlohmann ] ||
   [ ! -d /usr/include/gtest ]; then
  if [ -d .deps ]; then
    # shellcheck disable=SC1091
    source scripts/gpu_env.sh
    note "deps: unpacked .deps/ into /tmp/deps"
  else
    note "deps: system dev packages missing and no .deps/ carried (run scripts/fetch_gpu_deps.sh here)"
  fi
fi

# The tests read ../shared (models, tokenizers); a device copy of the tree may carry it as .shared.
if [ -z "${NANOVLLM_SHARED_DIR:-}" ] && [ ! -f ../shared/models/stories260K/config.json ] && [ -d .shared ]; then
  export NANOVLLM_SHARED_DIR=$PWD/.shared
  note "shared: NANOVLLM_SHARED_DIR=.shared (no ../shared here)"
fi

TEST_BIN=""
# NANOVLLM_GPU_SKIP_FULL_BUILD=1: build only the GPU op tests (faster; no bench).
if [ "${NANOVLLM_GPU_SKIP_FULL_BUILD:-0}" != 1 ] &&
   timeout 300 cmake -S . -B build-gpu -DNANOVLLM_CUDA=ON -DNANOVLLM_CUDA_ARCHITECTURES="$ARCH" \
     -DCMAKE_BUILD_TYPE=Release >"$OUT/configure.log" 2>&1 &&
   timeout 360 cmake --build build-gpu -j"$JOBS" >"$OUT/build.log" 2>&1; then
  note "build: full CMake build ok ($(elapsed)s)"
  TEST_BIN=build-gpu/test_gpu
else
  note "build: no full CMake build ($(elapsed)s; skipped, or see configure.log/build.log); building the GPU op tests alone"
  B=build-gpu-min
  mkdir -p "$B"
  CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
  INC="-Isrc -Iinclude -Itests -I$CUDA_HOME/include"
  # literal \" so that the sh -c below passes string-literal macros through
  DEFS="-DNANOVLLM_SHARED_DIR=\\\"$(cd .. && pwd)/shared\\\" -DNANOVLLM_SOURCE_DIR=\\\"$(pwd)\\\" -DNANOVLLM_BINARY_DIR=\\\"$(pwd)/$B\\\""
  {
    ls src/core/*.cpp src/backend/cpu/*.cpp src/backend/cuda/*.cpp tests/gpu/*.cpp |
      xargs -P "$JOBS" -I{} sh -c "g++ -std=c++20 -O2 -fopenmp $INC $DEFS -c {} -o $B/\$(echo {} | tr / _).o" &&
    ls src/backend/cuda/*.cu |
      xargs -P "$JOBS" -I{} sh -c "nvcc -std=c++20 -O3 --expt-relaxed-constexpr -lineinfo -gencode=arch=compute_$ARCH,code=sm_$ARCH $INC -c {} -o $B/\$(echo {} | tr / _).o" &&
    g++ -fopenmp "$B"/*.o -o "$B/test_gpu" -L"$CUDA_HOME/lib64" -lcublasLt -lcublas -lcudart \
      -lopenblas -lgtest -lgtest_main -lpthread
  } >"$OUT/build_min.log" 2>&1 && TEST_BIN=$B/test_gpu
  [ -n "$TEST_BIN" ] && note "build: GPU op tests built alone ($(elapsed)s)" || note "build: GPU op tests FAILED to build (build_min.log)"
fi

if [ -n "$TEST_BIN" ]; then
  if [ "$TEST_BIN" = build-gpu/test_gpu ]; then
    (cd build-gpu && timeout 240 ctest -L gpu --output-on-failure -j1) >"$OUT/ctest_gpu.log" 2>&1
    note "ctest -L gpu: rc=$? ($(elapsed)s)"
    grep -E "tests passed|tests failed|\*\*\*Failed|Not Run|Timeout" "$OUT/ctest_gpu.log" | head -40 | tee -a "$SUMMARY"
    # The failing assertions themselves, so they reach the summary even when the logs do not.
    grep -E -A6 "Failure$|: error: " "$OUT/ctest_gpu.log" | head -80 | tee -a "$SUMMARY"
  else
    timeout 240 "$TEST_BIN" --gtest_output=xml:"$OUT/test_gpu.xml" >"$OUT/test_gpu.log" 2>&1
    note "test_gpu: rc=$? ($(elapsed)s)"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[       OK|^\[  FAILED" "$OUT/test_gpu.log" | head -40 | tee -a "$SUMMARY"
  fi
  if command -v compute-sanitizer >/dev/null; then
    FILTER='CudaSimpleOps.*:CudaMemory.*:CudaQkvRopeStore.*:CudaSample.TiesBreakByLowerIndex:CudaPagedAttention.F16Prefill:CudaPagedAttention.DecodeF16AndOddHeadDims:CudaGraph.*'
    timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$TEST_BIN" --gtest_filter="$FILTER" \
      >"$OUT/memcheck.log" 2>&1
    note "memcheck ($FILTER): rc=$? ($(elapsed)s)"
    grep -E "ERROR SUMMARY|Invalid|PASSED|FAILED" "$OUT/memcheck.log" | head -10 | tee -a "$SUMMARY"
  else
    note "memcheck: compute-sanitizer not found"
  fi
fi

if [ -x build-gpu/nanovllm ] && build-gpu/nanovllm bench --help >"$OUT/bench_help.log" 2>&1; then
  BENCH_ARGS=${NANOVLLM_BENCH_ARGS:---preset qwen3-0.6b --load-format dummy --device cuda}
  LEFT=$(( 470 - $(elapsed) ))
  if [ "$LEFT" -gt 30 ]; then
    # shellcheck disable=SC2086
    timeout "$LEFT" build-gpu/nanovllm bench $BENCH_ARGS >"$OUT/bench.log" 2>&1
    note "bench ($BENCH_ARGS): rc=$? ($(elapsed)s)"
    tail -15 "$OUT/bench.log" | tee -a "$SUMMARY"
  else
    note "bench: skipped, only ${LEFT}s left"
  fi
else
  note "bench: no 'nanovllm bench' in this build"
fi
note "total: $(elapsed)s"
