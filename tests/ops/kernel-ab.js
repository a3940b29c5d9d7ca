// Interleaved A/B of the weight-type kernels between builds of the addon, in one process: one batch
// per build in turn, medians. Not a test: run it by hand with copies of build/Release/moescope.node,
//   node tests/ops/kernel-ab.js decode  TYPES N ROWS NMAT a.node b.node ...  (fast int8 GEMV, NMAT
//        matrices of ROWS x N cycled: set ROWS * NMAT large to read from memory, small to stay in L2;
//        K-quants: gemm_q8k at one token, per-256 activations; builds before it: the per-32 dot)
//   node tests/ops/kernel-ab.js exact   TYPES N ROWS NMAT a.node b.node ...  (the same, exact GEMV)
//   node tests/ops/kernel-ab.js prefill TYPES N ROWS NTOK a.node b.node ...  (exact dot_rows, NTOK tokens)
//   node tests/ops/kernel-ab.js gemm    TYPES N ROWS NTOK a.node b.node ...  (the fast mode's prefill kernel,
//        gemm_q8k, against activations rounded per 256; builds before ef2f47d: gemm_q8act, per 32; and
//        interleaved with it, from the same build, the exact dot_rows and the int8 GEMV that decode
//        uses, one token at a time: gemm against each within each build)
// TYPES: comma-separated, of F32 (exact and prefill only), Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
"use strict";
const path = require("path");

const TYPES = { F32: 0, Q8_0: 8, Q4_0: 2, Q4_K: 12, Q5_K: 13, Q6_K: 14 };
const [mode, types, n_, rows_, k_, ...files] = process.argv.slice(2);
const tokens = mode === "prefill" || mode === "gemm"; // the last number is NTOK, not NMAT
if (!["decode", "exact", "prefill", "gemm"].includes(mode) || files.length === 0)
  throw new Error("usage: node tests/ops/kernel-ab.js decode|exact|prefill|gemm TYPES N ROWS NMAT|NTOK a.node b.node ...");
const mods = files.map((f) => require(path.resolve(f)));
const n = Number(n_), rows = Number(rows_), k = Number(k_);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

for (const name of types.split(",")) {
  const type = TYPES[name];
  const one = mods[0]._quantize(type, new Float32Array(n * rows).map(() => Math.random() - 0.5));
  const nmat = tokens ? 1 : k, ntok = tokens ? k : 1;
  const all = Buffer.alloc(one.length * nmat);
  for (let i = 0; i < nmat; i++) one.copy(all, i * one.length);
  const mats = Array.from({ length: nmat }, (_, i) => all.subarray(i * one.length, (i + 1) * one.length));
  const x = new Float32Array(n * ntok).map(() => Math.random() - 0.5);
  const xq = mode === "decode" || mode === "gemm" ? mods.map((m) => m._quantizeQ8Act(x, n)) : [];
  const xqk = mode === "gemm" ? mods.map((m, j) => (m._quantizeQ8K ? m._quantizeQ8K(x, n) : xq[j])) : [];
  const gemm = (m, ...a) => (m._gemmQ8K ? m._gemmQ8K(...a) : m._gemmQ8Act(...a));
  // Builds with _gemmQ8KScalar decode K-quants with gemm_q8k (per-256 activations), older ones with the per-32 dot.
  const kq8k = (m) => m._gemmQ8KScalar !== undefined && type >= 12;
  const xk1 = mods.map((m) => (kq8k(m) ? m._quantizeQ8K(x, n) : null));
  const gemv = (m, j, w, ntok) => {
    if (!kq8k(m)) return m._dotQ8Act(type, w, xq[j], n, ntok, rows);
    const ld = xk1[j].length / ntok;
    for (let t = 0; t < ntok; t++) m._gemmQ8K(type, w, xk1[j].subarray(t * ld, (t + 1) * ld), n, 1, rows);
  };
  const times = mods.map(() => []), exact = mods.map(() => []), dot = mods.map(() => []);
  const timed = (f) => { const t0 = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t0) / 1e9; };
  for (let b = 0; b < 15; b++)
    mods.forEach((m, j) => {
      times[j].push(timed(() => {
        for (const w of mats) {
          if (mode === "decode") gemv(m, j, w, 1);
          else if (mode === "gemm") gemm(m, type, w, xqk[j], n, ntok, rows);
          else m._dotRows(type, w, x, n, ntok, rows);
        }
      }));
      if (mode === "gemm") {
        exact[j].push(timed(() => m._dotRows(type, mats[0], x, n, ntok, rows)));
        dot[j].push(timed(() => gemv(m, j, mats[0], ntok)));
      }
    });
  const unit = tokens
    ? (s) => `${((2 * n * rows * ntok) / s / 1e9).toFixed(1)} GFLOP/s`
    : (s) => `${(all.length / s / 1e9).toFixed(2)} GB/s`;
  const ratio = (a, j) => (median(a[j]) / median(times[j])).toFixed(2);
  const also = (j) => (mode === "gemm" ? ` (exact ${unit(median(exact[j]))}: ${ratio(exact, j)}x; int8 GEMV ${unit(median(dot[j]))}: ${ratio(dot, j)}x)` : "");
  console.log(`${mode} ${name} n=${n}: ` + files.map((f, j) => `${path.basename(f)} ${unit(median(times[j]))}${also(j)}`).join(" | "));
}
