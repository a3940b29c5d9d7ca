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
# --- node: the machine's, or the carried one ------------------------------------------------------
NODE=$(command -v node || true)
if [ -z "$NODE" ]; then
  [ -f .devcarry/node.xz ] || { echo "no node here and none carried: run 'bash native/tools/device-check.sh --pack' first and carry .devcarry"; exit 2; }
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
out="${OUT:-/tmp/device-check}"
mkdir -p "$out"
status=0
timeout 600 "$NODE" native/tools/device-check.js --out "$out" "$@" 2>&1 | tee "$out/device-check.log" || status=$?
echo "[device-check] $(( $(date +%s) - start )) s, exit $status"
exit $status
