#!/usr/bin/env bash
# llama.cpp's llama-bench beside `npm run bench`, on the same GGUF file and thread count.
#
#   bash native/tools/llamacpp-bench.sh FILE.gguf [THREADS] [ROUNDS] [PROMPT]
#
# llama.cpp cannot be downloaded here, but the npm package node-llama-cpp carries the llama.cpp
# source it was built from (llama/gitRelease.bundle, a git bundle). This script takes that source
# from the registry, builds llama-bench once (CPU, -DGGML_NATIVE=ON, about 6 minutes on 2 cores)
# under $MOESCOPE_LLAMACPP_DIR (default /tmp/moescope-llamacpp), then runs, ROUNDS times
# interleaved (the machines are noisy): llama-bench ppPROMPT/tg128 (PROMPT tokens, default 512) and
# moescope's bench in exact and fast precision with the same prompt length. Prints one line per run,
# then the medians of the rounds and of each round's ratio to llama.cpp.
set -euo pipefail
FILE=${1:?usage: llamacpp-bench.sh FILE.gguf [THREADS] [ROUNDS] [PROMPT]}
THREADS=${2:-2}
ROUNDS=${3:-3}
PROMPT=${4:-512}
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
# Each run appends one JSON line {round, who, prefill, decode} here; the summary reads them back.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
for r in $(seq "$ROUNDS"); do
  "$LB" -m "$FILE" -t "$THREADS" -p "$PROMPT" -n 128 -r 3 -o json 2>/dev/null | R=$r LOG=$LOG node -e '
    const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const ts = (p) => d.find((t) => (t.n_prompt > 0) === p).avg_ts;
    require("fs").appendFileSync(process.env.LOG, JSON.stringify({ round: +process.env.R, who: "llama.cpp", prefill: ts(true), decode: ts(false) }) + "\n");
    console.log(`round ${process.env.R} llama.cpp       prefill ${ts(true).toFixed(1)} tok/s  decode ${ts(false).toFixed(1)} tok/s`);'
  for p in exact fast; do
    node dist/engine/src/bench.js --model "$FILE" --threads "$THREADS" --reps 3 --prefill-tokens "$PROMPT" --precision $p --json 2>/dev/null | R=$r P=$p LOG=$LOG node -e '
      const d = JSON.parse(require("fs").readFileSync(0, "utf8").trim().split("\n").pop());
      require("fs").appendFileSync(process.env.LOG, JSON.stringify({ round: +process.env.R, who: process.env.P, prefill: d.prefill_tps, decode: d.decode_tps }) + "\n");
      console.log(`round ${process.env.R} ${("moescope " + process.env.P).padEnd(15)} prefill ${d.prefill_tps.toFixed(1)} tok/s  decode ${d.decode_tps.toFixed(1)} tok/s  (${(100 * d.bw_fraction).toFixed(0)} % of ${d.read_bw_gbs.toFixed(1)} GB/s)`);'
  done
done
# Medians over the rounds, and the medians of each round's own ratio to llama.cpp: the machines are
# shared, and a ratio within a round is steadier than one of medians taken minutes apart.
LOG=$LOG node -e '
  const runs = require("fs").readFileSync(process.env.LOG, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const median = (a) => { const s = [...a].sort((x, y) => x - y), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const of = (who, k) => runs.filter((r) => r.who === who).map((r) => r[k]);
  const ratio = (who, k) => median(runs.filter((r) => r.who === who).map((r) => r[k] / runs.find((l) => l.who === "llama.cpp" && l.round === r.round)[k]));
  for (const k of ["prefill", "decode"]) {
    const cells = ["exact", "fast"].map((p) => `${p} ${median(of(p, k)).toFixed(1)} (${ratio(p, k).toFixed(2)}x)`);
    console.log(`median ${k.padEnd(7)} llama.cpp ${median(of("llama.cpp", k)).toFixed(1)}  moescope ${cells.join("  ")} tok/s`);
  }'
