#!/usr/bin/env bash
# Source this on the GPU machine (no apt there): unpacks the Debian dev packages carried in .deps/
# (made here by scripts/fetch_gpu_deps.sh) into /tmp/deps and points CMake, pkg-config and the
# loader at them. Safe to source twice.
set -e
DEPS_ROOT=/tmp/deps
if [ ! -d "$DEPS_ROOT/usr" ]; then
  mkdir -p "$DEPS_ROOT"
  for deb in "$(dirname "${BASH_SOURCE[0]}")"/../.deps/*.deb; do dpkg -x "$deb" "$DEPS_ROOT"; done
  lib=$DEPS_ROOT/usr/lib/x86_64-linux-gnu
  ln -sf openblas-openmp/libopenblas.so.0 "$lib/libopenblas.so.0"
  ln -sf openblas-openmp/libopenblas.so "$lib/libopenblas.so"
  ln -sf openblas-openmp/libblas.so.3 "$lib/libblas.so.3"
  ln -sf openblas-openmp/libblas.so "$lib/libblas.so"
  ln -sf openblas-openmp/cblas.h "$DEPS_ROOT/usr/include/cblas.h" 2>/dev/null || true
  [ -f "$DEPS_ROOT/usr/include/x86_64-linux-gnu/cblas.h" ] || \
    ln -sf ../../lib/x86_64-linux-gnu/openblas-openmp/include/cblas.h "$DEPS_ROOT/usr/include/x86_64-linux-gnu/cblas.h" 2>/dev/null || true
fi
export CMAKE_PREFIX_PATH=$DEPS_ROOT/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
export PKG_CONFIG_PATH=$DEPS_ROOT/usr/lib/x86_64-linux-gnu/pkgconfig:$DEPS_ROOT/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$DEPS_ROOT
export LD_LIBRARY_PATH=$DEPS_ROOT/usr/lib/x86_64-linux-gnu:$DEPS_ROOT/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LIBRARY_PATH=$LD_LIBRARY_PATH
export CPATH=$DEPS_ROOT/usr/include:$DEPS_ROOT/usr/include/x86_64-linux-gnu:$DEPS_ROOT/usr/include/x86_64-linux-gnu/openblas-openmp
set +e
