// Single-thread throughput of the weight-type kernels, through the addon's _dotRows export (one
// native call per matrix, so the JS overhead is nil). Not a test: run it by hand,
//   node tests/ops/quant-bench.js [--mb 96] [--n 4096] [--reps 5] [--types Q4_K,Q8_0] [--ntok 1,32] [--fast]
// --fast adds the opt-in int8-activation mode (decode, ntok = 1) next to the exact kernel.
// Decode (ntok = 1) uses a matrix of about --mb MB of weight bytes (default 96 MB, above the 32 MB
// L3 of the dev machine), so the figure includes the trip to memory. Prefill (ntok > 1) uses 1024
// rows: it is compute-bound and reported in GFLOP/s. Each figure is the best of --reps runs, timed
// by the process's CPU time (process.cpuUsage): on a machine shared with other jobs, wall time
// also counts the time the thread waited for a core.
"use strict";
const path = require("path");
const native = require(path.resolve(__dirname, "../../build/Release/moescope.node"));

const TYPES = { F32: 0, F16: 1, BF16: 30, Q8_0: 8, Q4_0: 2, Q4_K: 12, Q5_K: 13, Q6_K: 14 };
const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : d; };
const mb = Number(opt("mb", 96)), n = Number(opt("n", 4096)), reps = Number(opt("reps", 5));
const types = opt("types", Object.keys(TYPES).join(",")).split(",");
const ntoks = opt("ntok", "1,32").split(",").map(Number);

function matrix(type, rows) {
  // 64 distinct quantised rows of normal(0, 0.02) weights, repeated: speed does not depend on values.
  const distinct = 64;
  const w = new Float32Array(n * distinct);
  for (let i = 0; i < w.length; i++) w[i] = 0.02 * Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  const q = native._quantize(type, w);
  const stride = q.length / distinct;
  const out = Buffer.allocUnsafe(stride * rows);
  for (let r = 0; r < rows; r += distinct) q.copy(out, r * stride, 0, Math.min(distinct, rows - r) * stride);
  return { buf: out, stride };
}

function cpuSeconds(f) {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

console.log(`kernel: ${native.dotKernel}; n = ${n}; best of ${reps} (CPU time)`);
for (const name of types) {
  const type = TYPES[name];
  for (const ntok of ntoks) {
    const stride = native._quantize(type, new Float32Array(n)).length;
    const rows = ntok === 1 ? Math.max(64, Math.round((mb * 1e6) / stride / 64) * 64) : 1024;
    const { buf } = matrix(type, rows);
    const x = new Float32Array(n * ntok).map(() => Math.random() - 0.5);
    native._dotRows(type, buf, x, n, ntok, rows); // warm-up (page faults, caches)
    let best = Infinity;
    for (let i = 0; i < reps; i++) best = Math.min(best, cpuSeconds(() => native._dotRows(type, buf, x, n, ntok, rows)));
    const bytes = buf.length, weights = rows * n;
    console.log(
      `${name.padEnd(5)} ntok=${String(ntok).padStart(2)}  ${rows}x${n} (${(bytes / 1e6).toFixed(1)} MB)  ` +
      `${(best * 1e3).toFixed(2)} ms  ${(bytes / best / 1e9).toFixed(2)} GB/s of weights  ` +
      `${(weights / best / 1e9).toFixed(2)} G weights/s  ${((2 * weights * ntok) / best / 1e9).toFixed(1)} GFLOP/s`);
  }
}

if (args.includes("--fast")) {
  console.log("fast mode (int8 activations, NOT exact), ntok = 1:");
  for (const name of types) {
    const type = TYPES[name];
    if (type === 0 || type === 1 || type === 30) continue;
    const stride = native._quantize(type, new Float32Array(n)).length;
    const rows = Math.max(64, Math.round((mb * 1e6) / stride / 64) * 64);
    const { buf } = matrix(type, rows);
    const x = new Float32Array(n).map(() => Math.random() - 0.5);
    let best = Infinity, bestExact = Infinity;
    for (let i = 0; i <= reps; i++) { // run 0 is the warm-up
      // Includes quantising x: per 256 for the K-quants (_gemmQ8K), per 32 for Q8_0 / Q4_0 (_dotQ8Act).
      const fast = cpuSeconds(() => (type >= 12 ? native._gemmQ8K(type, buf, native._quantizeQ8K(x, n), n, 1, rows)
                                                : native._dotQ8Act(type, buf, native._quantizeQ8Act(x, n), n, 1, rows)));
      const exact = cpuSeconds(() => native._dotRows(type, buf, x, n, 1, rows));
      if (i) { best = Math.min(best, fast); bestExact = Math.min(bestExact, exact); }
    }
    console.log(`${name.padEnd(5)} fast ${(buf.length / best / 1e9).toFixed(2)} GB/s   exact ` +
      `${(buf.length / bestExact / 1e9).toFixed(2)} GB/s   speed-up ${(bestExact / best).toFixed(2)}x`);
  }
}
