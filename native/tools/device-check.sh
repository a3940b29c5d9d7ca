#!/usr/bin/env bash
# The CUDA backend's device check (issue 9): on a machine with an NVIDIA GPU, in under 5 minutes,
# runs native/tools/device-check.js (parity of CUDA vs CPU on every fixture and a synth model,
# quantized fixtures against ref64, interventions, long prompt, cancellation; then decode/prefill
# tokens/s, fraction of the measured device bandwidth and routing-capture overhead) and prints the table.
#
# The GPU machine has no node and no network, so everything it needs travels with the repo:
#   1. here (no GPU needed):   bash native/tools/device-check.sh --pack
#        builds build-cuda/Release/moescope.node (npm run build:cuda: sm_80 + sm_90) and dist/
#        (npm run build:ts), and puts this machine's node (xz) and libstdc++ in .devcarry/
#        (ignored through .git/info/exclude).
#   2. on the GPU machine:     bash native/tools/device-check.sh [--skip-speed] [--scout-layers N]
#        with the device tool: run(command="bash native/tools/device-check.sh",
#          carry=["build-cuda/Release/moescope.node", "dist", ".devcarry"], timeout_s=420)
#        Results: the printed table, and $OUT/device-check.json (or /tmp/device-check/).
#   Without node (none there, none carried), it runs the node-free C++ check instead:
#        build-cuda/moescope-cuda-check (also built by build:cuda): CPU vs CUDA on the fixtures with every
#        hook and the interventions, then prefill/decode speed, bandwidth fraction, capture overhead.
#        carry=["build-cuda/moescope-cuda-check"] is then enough (3 MB instead of ~30 MB).
#   With nvcc, cmake and node_modules on the GPU machine, MOESCOPE_REBUILD=1 compiles the addon there
#   instead (node tools/build-native.js picks the CUDA build by itself when a GPU is present).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = "--pack" ]; then
  npm run --silent build:cuda
  npm run --silent build:ts
  mkdir -p .devcarry/lib
  grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo '/.devcarry/' >> .git/info/exclude
  [ -f .devcarry/node.xz ] || xz -T0 -6 -c "$(command -v node)" > .devcarry/node.xz
  for l in libstdc++.so.6 libgcc_s.so.1; do cp -L "/lib/x86_64-linux-gnu/$l" .devcarry/lib/ 2>/dev/null || true; done
  du -sh .devcarry build-cuda/Release/moescope.node dist
  echo "packed: now run on the GPU machine with carry [build-cuda/Release/moescope.node, dist, .devcarry]"
  exit 0
fi

start=$(date +%s)
out="${OUT:-/tmp/device-check}"
mkdir -p "$out"
# --- node: the machine's, or the carried one; without either, the node-free C++ check -------------
NODE=$(command -v node || true)
if [ -z "$NODE" ] && [ ! -f .devcarry/node.xz ]; then
  [ -x build-cuda/moescope-cuda-check ] || { echo "no node, no .devcarry/node.xz, no build-cuda/moescope-cuda-check: run --pack here first"; exit 2; }
  echo "[device-check] no node: running the C++ check (build-cuda/moescope-cuda-check)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  F=tests/fixtures/golden; P=$F/prompts
  status=0
  { ./build-cuda/moescope-cuda-check $F/tiny-scout/model.gguf:$P/p1.txt $F/tiny-scout/hf:$P/p3.txt $F/tiny-scout-f16/model.gguf:$P/p1.txt \
      $F/tiny-scout-bf16/hf:$P/p1.txt $F/tiny-maverick/model.gguf:$P/p1.txt $F/tiny-maverick/hf:$P/p_long.txt || status=1
    ./build-cuda/moescope-cuda-check --tol 1e-4 $F/tiny-scout-q8_0/model.gguf:$P/p1.txt $F/small-scout-Q8_0/model.gguf:$P/p1.txt \
      $F/small-scout-Q6_K/model.gguf:$P/p3.txt $F/small-scout-Q4_K_M/model.gguf:$P/p1.txt || status=1
    ./build-cuda/moescope-cuda-check --bench $F/small-scout-Q4_K_M/model.gguf $F/tiny-scout-bf16/model.gguf || status=1
  } 2>&1 | tee "$out/device-check.log"
  echo "[device-check] $(( $(date +%s) - start )) s, exit $status"
  exit $status
fi
if [ -z "$NODE" ]; then
  xz -dc .devcarry/node.xz > /tmp/moescope-node && chmod +x /tmp/moescope-node
  NODE=/tmp/moescope-node
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libstdc++.so.6' && [ -d .devcarry/lib ]; then export LD_LIBRARY_PATH="$PWD/.devcarry/lib:${LD_LIBRARY_PATH:-}"; fi
echo "[device-check] node $("$NODE" --version)"

# --- the addon: rebuilt here, or the one compiled on the dev machine --------------------------------
mkdir -p build/Release
if [ "${MOESCOPE_REBUILD:-0}" = "1" ]; then
  MOESCOPE_CUDA=1 "$NODE" tools/build-native.js
elif [ -f build-cuda/Release/moescope.node ]; then
  cp build-cuda/Release/moescope.node build/Release/moescope.node
else
  echo "no CUDA addon: carry build-cuda/Release/moescope.node (made by --pack) or set MOESCOPE_REBUILD=1"; exit 2
fi
[ -f dist/engine/src/model.js ] || { echo "dist/ missing: carry it (npm run build:ts)"; exit 2; }

nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv,noheader 2>/dev/null || echo "(nvidia-smi unavailable)"
status=0
timeout 600 "$NODE" native/tools/device-check.js --out "$out" "$@" 2>&1 | tee "$out/device-check.log" || status=$?
echo "[device-check] $(( $(date +%s) - start )) s, exit $status"
exit $status
