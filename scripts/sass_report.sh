#!/usr/bin/env bash
# Here, without a GPU: compiles one CUDA source of the backend for sm_90a, prints each kernel's
# registers and spills (ptxas -v) and, for kernels whose mangled name matches PATTERN, the
# instruction counts of their loops (tools/sass_loops.py). cuobjdump is not in the CUDA toolkit
# this machine has; `NANOVLLM_SASS_TOOLS=1 NANOVLLM_SKIP_BUILD=1 scripts/install.sh` unpacks them
# (pinned there) into ~/.cache/nanovllm/sass-tools.
#   scripts/sass_report.sh src/backend/cuda/decode_attention_bf16.cu 'mma_kernelI13__nv_bfloat16LNS_7KvDTypeE3ELi128ELi2E'
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$1; PATTERN=${2:-.}
TOOLS=${HOME}/.cache/nanovllm/sass-tools
if [ ! -x "$TOOLS/nvidia/cu13/bin/cuobjdump" ]; then
  echo "sass_report.sh: no cuobjdump in $TOOLS; run NANOVLLM_SASS_TOOLS=1 NANOVLLM_SKIP_BUILD=1 scripts/install.sh" >&2
  exit 2
fi
export PATH=$TOOLS/nvidia/cu13/bin:$PATH  # cuobjdump runs nvdisasm
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
"$NVCC" -I src -I include -O3 -DNDEBUG -gencode arch=compute_90a,code=sm_90a \
  --expt-relaxed-constexpr -std=c++20 -x cu -cubin "$SRC" -o "$WORK/k.cubin" -Xptxas -v 2> "$WORK/ptxas.log"
"$TOOLS/nvidia/cu13/bin/cuobjdump" -sass "$WORK/k.cubin" > "$WORK/k.sass"
grep -o "Function : .*" "$WORK/k.sass" | sed 's/Function : //' | grep -E "$PATTERN" | while read -r k; do
  echo "== $k"
  grep -A3 "Compiling entry function '$k'" "$WORK/ptxas.log" | grep -E "Used|spill" | sed 's/^ptxas info    : //;s/^ *//'
  python3 tools/sass_loops.py "$WORK/k.sass" "$k" --min 20
done
