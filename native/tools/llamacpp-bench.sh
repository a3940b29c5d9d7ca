#!/usr/bin/env bash
# llama.cpp's llama-bench beside `npm run bench`, on the same GGUF file and thread count.
#
#   bash native/tools/llamacpp-bench.sh FILE.gguf [THREADS] [ROUNDS]
#
# llama.cpp cannot be downloaded here, but the npm package node-llama-cpp carries the llama.cpp
# source it was built from (llama/gitRelease.bundle, a git bundle). This script takes that source
# from the registry, builds llama-bench once (CPU, -DGGML_NATIVE=ON, about 6 minutes on 2 cores)
# under $MOESCOPE_LLAMACPP_DIR (default /tmp/moescope-llamacpp), then runs, ROUNDS times
# interleaved (the machines are noisy): llama-bench pp512/tg128 and moescope's bench in exact and
# fast precision. Prints one line per run; compare medians of the rounds.
set -euo pipefail
FILE=${1:?usage: llamacpp-bench.sh FILE.gguf [THREADS] [ROUNDS]}
THREADS=${2:-2}
ROUNDS=${3:-3}
NLC_VERSION=3.22.1  # its bundle is llama.cpp commit de3ff81 (ggml 0.5.0); it runs Llama 4
DIR=${MOESCOPE_LLAMACPP_DIR:-/tmp/moescope-llamacpp}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LB=$DIR/llama.cpp/build/bin/llama-bench

if [ ! -x "$LB" ]; then
  mkdir -p "$DIR" && cd "$DIR"
  if [ ! -d llama.cpp ]; then
    npm pack "node-llama-cpp@$NLC_VERSION" >/dev/null
    tar xzf "node-llama-cpp-$NLC_VERSION.tgz" package/llama/gitRelease.bundle
    git clone -q package/llama/gitRelease.bundle llama.cpp
  fi
  cmake -S llama.cpp -B llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  echo "building llama-bench (a few minutes)..." >&2
  cmake --build llama.cpp/build --target llama-bench -j"$(nproc)" >/dev/null
fi

cd "$ROOT"
for r in $(seq "$ROUNDS"); do
  "$LB" -m "$FILE" -t "$THREADS" -p 512 -n 128 -r 3 -o json 2>/dev/null | node -e '
    const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const ts = (p) => d.find((t) => (t.n_prompt > 0) === p).avg_ts.toFixed(1);
    console.log(`round '"$r"' llama.cpp       prefill ${ts(true)} tok/s  decode ${ts(false)} tok/s`);'
  for p in exact fast; do
    node dist/engine/src/bench.js --model "$FILE" --threads "$THREADS" --reps 3 --precision $p --json 2>/dev/null | node -e '
      const d = JSON.parse(require("fs").readFileSync(0, "utf8").trim().split("\n").pop());
      console.log(`round '"$r"' ${"moescope '"$p"'".padEnd(15)} prefill ${d.prefill_tps.toFixed(1)} tok/s  decode ${d.decode_tps.toFixed(1)} tok/s  (${(100 * d.bw_fraction).toFixed(0)} % of ${d.read_bw_gbs.toFixed(1)} GB/s)`);'
  done
done
