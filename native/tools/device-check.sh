#!/usr/bin/env bash
# The CUDA backend's device check (issue 9): on a machine with an NVIDIA GPU, in under 5 minutes,
# runs native/tools/device-check.js (parity of CUDA vs CPU on every fixture and a synth model,
# quantized fixtures against ref64, interventions, long prompt, cancellation; then decode/prefill
# tokens/s, fraction of the measured device bandwidth and routing-capture overhead) and prints the table.
#
# The GPU machine has no node and no network, so everything it needs travels with the repo, and the
# device tool takes 64 MiB in all (working tree + carried paths):
#   1. here (no GPU needed):   bash native/tools/device-check.sh --pack
#        builds the CUDA addon, moescope-cuda-check and moescope-cuda-gemv-bench (npm run build:cuda:
#        sm_80 + sm_90) and dist/ (npm run build:ts), and puts them, stripped, with this machine's node
#        (stripped, xz) in .devcarry/ (ignored through .git/info/exclude): ~29 MiB.
#      then:                    node native/tools/device-travel.js --travel
#        leaves the fixtures the check does not read out of the index for the run (~34 MiB travel).
#   2. on the GPU machine:     bash native/tools/device-check.sh [--skip-speed] [--scout-layers N]
#        with the device tool: run(command="bash native/tools/device-check.sh --scout-layers 2",
#          carry=[".devcarry", "dist"], timeout_s=420): ~120 s on an H100 at e56c124, 103 s of it the
#          2-layer Scout Q4_K_M synth (synth draws in native code and quantizes on every core since), plus
#          ~35 s to start.
#        Results: the printed table, and $OUT/device-check.json (or /tmp/device-check/).
#   3. here:                   node native/tools/device-travel.js --untravel
#   Without node (none there, none carried), it runs the node-free C++ check instead:
#        .devcarry/moescope-cuda-check: CPU vs CUDA on the fixtures with every hook and the
#        interventions, then prefill/decode speed, bandwidth fraction, capture overhead.
#   With nvcc, cmake and node_modules on the GPU machine, MOESCOPE_REBUILD=1 compiles the addon there
#   instead (node tools/build-native.js picks the CUDA build by itself when a GPU is present).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = "--pack" ]; then
  npm run --silent build:cuda
  npm run --silent build:ts
  mkdir -p .devcarry
  grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo '/.devcarry/' >> .git/info/exclude
  # Stripped: everything that travels must fit the device tool's 64 MiB with the fixtures.
  if [ ! -f .devcarry/node.xz ]; then strip -o .devcarry/node "$(command -v node)" && xz -T0 -6 .devcarry/node; fi
  for t in moescope-cuda-check moescope-cuda-gemv-bench; do strip -o .devcarry/$t build-cuda/$t; done
  strip --strip-unneeded -o .devcarry/moescope.node build-cuda/Release/moescope.node
  du -sh .devcarry/* dist
  echo "packed: now node native/tools/device-travel.js --travel, then run on the GPU machine with carry [.devcarry, dist]"
  exit 0
fi

start=$(date +%s)
out="${OUT:-/tmp/device-check}"
mkdir -p "$out"
# --- node: the machine's, or the carried one; without either, the node-free C++ check -------------
NODE=$(command -v node || true)
if [ -z "$NODE" ] && [ ! -f .devcarry/node.xz ]; then
  [ -x .devcarry/moescope-cuda-check ] || { echo "no node, no .devcarry/node.xz, no .devcarry/moescope-cuda-check: run --pack here first"; exit 2; }
  echo "[device-check] no node: running the C++ check (.devcarry/moescope-cuda-check)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  F=tests/fixtures/golden; P=$F/prompts
  status=0
  { .devcarry/moescope-cuda-check $F/tiny-scout/model.gguf:$P/p1.txt $F/tiny-scout/hf:$P/p3.txt $F/tiny-scout-f16/model.gguf:$P/p1.txt \
      $F/tiny-scout-bf16/hf:$P/p1.txt $F/tiny-maverick/model.gguf:$P/p1.txt $F/tiny-maverick/hf:$P/p_long.txt || status=1
    .devcarry/moescope-cuda-check --tol 1e-4 $F/tiny-scout-q8_0/model.gguf:$P/p1.txt $F/small-scout-Q8_0/model.gguf:$P/p1.txt \
      $F/small-scout-Q6_K/model.gguf:$P/p3.txt $F/small-scout-Q4_K_M/model.gguf:$P/p1.txt || status=1
    .devcarry/moescope-cuda-check --bench $F/small-scout-Q4_K_M/model.gguf $F/tiny-scout-bf16/model.gguf || status=1
  } 2>&1 | tee "$out/device-check.log"
  echo "[device-check] $(( $(date +%s) - start )) s, exit $status"
  exit $status
fi
if [ -z "$NODE" ]; then
  xz -dc .devcarry/node.xz > /tmp/moescope-node && chmod +x /tmp/moescope-node
  NODE=/tmp/moescope-node
fi
echo "[device-check] node $("$NODE" --version)"

# --- the addon: rebuilt here, or the one compiled on the dev machine --------------------------------
mkdir -p build/Release
if [ "${MOESCOPE_REBUILD:-0}" = "1" ]; then
  MOESCOPE_CUDA=1 "$NODE" tools/build-native.js
elif [ -f .devcarry/moescope.node ]; then
  cp .devcarry/moescope.node build/Release/moescope.node
else
  echo "no CUDA addon: carry .devcarry (made by --pack) or set MOESCOPE_REBUILD=1"; exit 2
fi
[ -f dist/engine/src/model.js ] || { echo "dist/ missing: carry it (npm run build:ts)"; exit 2; }

nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv,noheader 2>/dev/null || echo "(nvidia-smi unavailable)"
status=0
timeout 600 "$NODE" native/tools/device-check.js --out "$out" "$@" 2>&1 | tee "$out/device-check.log" || status=$?
# Where a decode step's time goes (host launching vs waiting for the GPU), on the synth models just benched.
if [ -x .devcarry/moescope-cuda-check ]; then
  for f in /tmp/moescope-scout-mid-Q4_K_M.gguf /tmp/moescope-scout-mid-BF16.gguf /tmp/moescope-scout-*-L*.gguf; do
    [ -f "$f" ] && timeout 120 .devcarry/moescope-cuda-check --bench "$f" 2>&1 | tee -a "$out/device-check.log"
  done
fi
echo "[device-check] $(( $(date +%s) - start )) s, exit $status"
exit $status
