// Weight-type kernels (native/src/ops/quant*.cpp) against an independent TypeScript decoder of
// ggml's block formats, written here from ggml's dequantize_row_* definitions:
//   - each supported type's dequantiser, bit for bit, on random blocks and on real tensor rows
//     copied from the shared fixtures (tests/fixtures/quant, see extract.py there);
//   - each fused dot (the registry's SIMD one and the portable one) against the float64 dot of the
//     dequantised row, for many row lengths and 1..67 activation rows;
//   - quantise -> dequantise round trips, within a per-type error bound;
//   - the registry's sizes for types moescope only names, and a clear error for them.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const native = require(path.resolve(__dirname, "../../build/Release/moescope.node"));
const FIXTURES = path.resolve(__dirname, "../fixtures/quant");

const F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30;
const QK_K = 256;
const f = Math.fround;

// ---- deterministic randomness ----
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return { next, normal, int: (n: number) => Math.floor(next() * n) };
}

// ---- the reference decoder ----
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
function bf16ToFloat(h: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, h << 16);
  return dv.getFloat32(0);
}
// ggml's get_scale_min_k4.
function scaleMinK4(j: number, q: Uint8Array): [number, number] {
  if (j < 4) return [q[j] & 63, q[j + 4] & 63];
  return [(q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)];
}

const blockInfo: Record<number, { bs: number; ts: number }> = {
  [F32]: { bs: 1, ts: 4 }, [F16]: { bs: 1, ts: 2 }, [BF16]: { bs: 1, ts: 2 }, [Q8_0]: { bs: 32, ts: 34 },
  [Q4_0]: { bs: 32, ts: 18 }, [Q4_K]: { bs: 256, ts: 144 }, [Q5_K]: { bs: 256, ts: 176 }, [Q6_K]: { bs: 256, ts: 210 },
};

// Every float32 operation ggml performs is rounded with fround, in ggml's order.
function dequantRef(type: number, buf: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const { bs, ts } = blockInfo[type];
  for (let b = 0; b < n / bs; b++) {
    const o = b * ts, yo = b * bs;
    const blk = buf.subarray(o, o + ts);
    switch (type) {
      case F32: y[yo] = dv.getFloat32(o, true); break;
      case F16: y[yo] = halfToFloat(dv.getUint16(o, true)); break;
      case BF16: y[yo] = bf16ToFloat(dv.getUint16(o, true)); break;
      case Q8_0: { // {f16 d; int8 qs[32]}
        const d = halfToFloat(dv.getUint16(o, true));
        for (let j = 0; j < 32; j++) y[yo + j] = f(((blk[2 + j] << 24) >> 24) * d);
        break;
      }
      case Q4_0: { // {f16 d; uint8 qs[16]}: low nibbles elements 0..15, high 16..31
        const d = halfToFloat(dv.getUint16(o, true));
        for (let j = 0; j < 16; j++) {
          y[yo + j] = f(((blk[2 + j] & 0xf) - 8) * d);
          y[yo + j + 16] = f(((blk[2 + j] >> 4) - 8) * d);
        }
        break;
      }
      case Q4_K: case Q5_K: { // {f16 d; f16 dmin; u8 scales[12]; (Q5_K: u8 qh[32];) u8 qs[128]}
        const d = halfToFloat(dv.getUint16(o, true)), dmin = halfToFloat(dv.getUint16(o + 2, true));
        const scales = blk.subarray(4, 16);
        const qh = type === Q5_K ? blk.subarray(16, 48) : null;
        const qs = blk.subarray(type === Q5_K ? 48 : 16);
        let k = yo;
        for (let j = 0, is = 0; j < QK_K; j += 64, is += 2) {
          const q = qs.subarray(j / 2);
          const [s1, m1i] = scaleMinK4(is, scales), [s2, m2i] = scaleMinK4(is + 1, scales);
          const d1 = f(d * s1), m1 = f(dmin * m1i), d2 = f(d * s2), m2 = f(dmin * m2i);
          const u1 = 1 << is, u2 = 2 << is;
          for (let l = 0; l < 32; l++) y[k++] = f(f(d1 * ((q[l] & 0xf) + (qh && qh[l] & u1 ? 16 : 0))) - m1);
          for (let l = 0; l < 32; l++) y[k++] = f(f(d2 * ((q[l] >> 4) + (qh && qh[l] & u2 ? 16 : 0))) - m2);
        }
        break;
      }
      case Q6_K: { // {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
        const d = halfToFloat(dv.getUint16(o + 208, true));
        for (let half = 0; half < 2; half++) {
          const ql = blk.subarray(64 * half), qh = blk.subarray(128 + 32 * half);
          const sc = (i: number) => (blk[192 + 8 * half + i] << 24) >> 24;
          const base = yo + 128 * half;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[base + l] = f(f(d * sc(is)) * q1);
            y[base + l + 32] = f(f(d * sc(is + 2)) * q2);
            y[base + l + 64] = f(f(d * sc(is + 4)) * q3);
            y[base + l + 96] = f(f(d * sc(is + 6)) * q4);
          }
        }
        break;
      }
      default: throw new Error(`no reference decoder for type ${type}`);
    }
  }
  return y;
}

// Random bytes are valid blocks of every type except for the f16 scales: those get a finite value
// of modest size (exponent 0..19 of 31, so subnormals too), the rest of the bits stay random.
function randomHalf(r: ReturnType<typeof rng>): number {
  return (r.int(2) << 15) | (r.int(20) << 10) | r.int(1024);
}
function randomRow(type: number, n: number, r: ReturnType<typeof rng>): Buffer {
  const { bs, ts } = blockInfo[type];
  const buf = Buffer.alloc((n / bs) * ts);
  for (let i = 0; i < buf.length; i++) buf[i] = r.int(256);
  for (let b = 0; b < n / bs; b++) {
    const o = b * ts;
    if (type === F32) buf.writeFloatLE(r.normal(), o);
    else if (type === F16 || type === Q8_0 || type === Q4_0) buf.writeUInt16LE(randomHalf(r), o);
    else if (type === BF16) buf.writeUInt16LE(((r.int(2) << 15) | ((100 + r.int(40)) << 7) | r.int(128)), o);
    else if (type === Q4_K || type === Q5_K) { buf.writeUInt16LE(randomHalf(r), o); buf.writeUInt16LE(randomHalf(r), o + 2); }
    else if (type === Q6_K) buf.writeUInt16LE(randomHalf(r), o + 208);
  }
  return buf;
}

function sameFloats(got: Float32Array, want: Float32Array) {
  expect(got.length).toBe(want.length);
  // x86 builds compute ggml's products and differences unfused, so the match is exact; a compiler
  // that fuses d*q - m into an FMA (aarch64 GCC by default) may differ by one rounding.
  const ulps = process.arch === "x64" ? 0 : 2;
  let bad = -1;
  for (let i = 0; i < got.length && bad < 0; i++) {
    if (Number.isNaN(want[i])) { if (!Number.isNaN(got[i])) bad = i; continue; }
    if (Math.abs(got[i] - want[i]) > ulps * 1.2e-7 * Math.max(Math.abs(want[i]), 1e-30) + (ulps ? 1e-12 : 0)) bad = i;
  }
  if (bad >= 0) expect({ index: bad, got: got[bad] }).toEqual({ index: bad, got: want[bad] });
}

// |dot - exact| against the scale of the rounding error of a float32 sum: sqrt(sum (w_i x_i)^2).
function checkDot(type: number, row: Buffer, n: number, ntok: number, r: ReturnType<typeof rng>, label: string, offset = 0) {
  const x = new Float32Array(n * ntok);
  for (let i = 0; i < x.length; i++) x[i] = f(offset + r.normal());
  checkDotOn(type, row, n, x, ntok, label);
}

function checkDotOn(type: number, row: Buffer, n: number, x: Float32Array, ntok: number, label: string) {
  const w = dequantRef(type, row, n);
  const fast: Float32Array = native._dot(type, row, x, n, ntok);
  const portable: Float32Array = native._dotScalar(type, row, x, n, ntok);
  let errFast = 0, errPortable = 0, norm = 0;
  for (let t = 0; t < ntok; t++) {
    let ref = 0, rss = 0;
    for (let i = 0; i < n; i++) { const p = w[i] * x[t * n + i]; ref += p; rss += p * p; }
    rss = Math.sqrt(rss) || 1;
    errFast = Math.max(errFast, Math.abs(fast[t] - ref) / rss);
    errPortable = Math.max(errPortable, Math.abs(portable[t] - ref) / rss);
    norm += ref * ref;
  }
  expect(Number.isFinite(norm), label).toBe(true);
  expect(errFast, `${label} registry dot (${native.dotKernel})`).toBeLessThanOrEqual(1e-5);
  expect(errPortable, `${label} portable dot`).toBeLessThanOrEqual(1e-5);
}

const SUPPORTED: [string, number][] = [
  ["F32", F32], ["F16", F16], ["BF16", BF16], ["Q8_0", Q8_0], ["Q4_0", Q4_0], ["Q4_K", Q4_K], ["Q5_K", Q5_K], ["Q6_K", Q6_K],
];

describe("weight-type registry", () => {
  it("reports the kernel family", () => {
    expect(["avx512+avx2+fma", "avx2+fma", "scalar"]).toContain(native.dotKernel);
    // quant-avx2.test.ts runs this file again with the switch set: it must have taken.
    if (process.env.MOESCOPE_NO_AVX512) expect(native.dotKernel).not.toBe("avx512+avx2+fma");
  });

  // The AVX-512 prefill panels (quant_avx512.cpp) and the fast mode's VNNI tile (quant_q8k.cpp) claim
  // the AVX2 kernels' roundings exactly: the same products computed here and in a process held to
  // AVX2 must agree bit for bit.
  it.skipIf(native.dotKernel !== "avx512+avx2+fma")("the AVX-512 prefill kernels give the AVX2 kernels' bits, exact and fast", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-avx2-"));
    try {
      const cases: { type: number; n: number; nrows: number; ntok: number }[] = [];
      const r = rng(7100);
      for (const [, type] of SUPPORTED)
        for (const [n, nrows, ntok] of [[blockInfo[type].bs === 1 ? 264 : 512, 37, 67], [1024, 16, 8], [512, 7, 2], [blockInfo[type].bs === 1 ? 13 : 256, 5, 130], [512, 20, 9]]) {
          const i = cases.length;
          fs.writeFileSync(path.join(dir, `w${i}`), Buffer.concat(Array.from({ length: nrows }, () => randomRow(type, n, r))));
          fs.writeFileSync(path.join(dir, `x${i}`), new Float32Array(n * ntok).map(() => f(r.normal())));
          cases.push({ type, n, nrows, ntok });
        }
      fs.writeFileSync(path.join(dir, "cases.json"), JSON.stringify(cases));
      const script = `
        const fs = require("fs"), path = require("path"), dir = process.argv[1];
        const native = require(${JSON.stringify(path.resolve(__dirname, "../../build/Release/moescope.node"))});
        if (native.dotKernel !== "avx2+fma") throw new Error("not held to AVX2: " + native.dotKernel);
        JSON.parse(fs.readFileSync(path.join(dir, "cases.json"), "utf8")).forEach((c, i) => {
          const b = fs.readFileSync(path.join(dir, "x" + i));
          const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
          const w = fs.readFileSync(path.join(dir, "w" + i));
          const y = native._dotRows(c.type, w, x, c.n, c.ntok, c.nrows);
          fs.writeFileSync(path.join(dir, "y" + i), Buffer.from(y.buffer, y.byteOffset, y.byteLength));
          if (![12, 13, 14].includes(c.type)) return;  // the fast mode's int8 GEMM is the K-quants'
          const g = native._gemmQ8K(c.type, w, native._quantizeQ8K(x, c.n), c.n, c.ntok, c.nrows);
          fs.writeFileSync(path.join(dir, "g" + i), Buffer.from(g.buffer, g.byteOffset, g.byteLength));
        });`;
      execFileSync(process.execPath, ["-e", script, dir], { env: { ...process.env, MOESCOPE_NO_AVX512: "1" } });
      cases.forEach((c, i) => {
        const b = fs.readFileSync(path.join(dir, `x${i}`));
        const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
        const mine: Float32Array = native._dotRows(c.type, fs.readFileSync(path.join(dir, `w${i}`)), x, c.n, c.ntok, c.nrows);
        const yb = fs.readFileSync(path.join(dir, `y${i}`));
        const avx2 = new Float32Array(yb.buffer, yb.byteOffset, yb.length / 4);
        expect(Buffer.from(mine.buffer, mine.byteOffset, mine.byteLength).equals(Buffer.from(avx2.buffer, avx2.byteOffset, avx2.byteLength)),
          `type ${c.type} n=${c.n} rows=${c.nrows} ntok=${c.ntok}`).toBe(true);
        if (![Q4_K, Q5_K, Q6_K].includes(c.type)) return;
        const g: Float32Array = native._gemmQ8K(c.type, fs.readFileSync(path.join(dir, `w${i}`)), native._quantizeQ8K(x, c.n), c.n, c.ntok, c.nrows);
        expect(Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(fs.readFileSync(path.join(dir, `g${i}`))),
          `fast mode, type ${c.type} n=${c.n} rows=${c.nrows} ntok=${c.ntok}`).toBe(true);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("knows ggml's block sizes, names and which types it computes with", () => {
    const expected: [number, string, number, number, boolean][] = [
      [0, "F32", 1, 4, true], [1, "F16", 1, 2, true], [2, "Q4_0", 32, 18, true], [3, "Q4_1", 32, 20, false],
      [6, "Q5_0", 32, 22, false], [7, "Q5_1", 32, 24, false], [8, "Q8_0", 32, 34, true], [9, "Q8_1", 32, 36, false],
      [10, "Q2_K", 256, 84, false], [11, "Q3_K", 256, 110, false], [12, "Q4_K", 256, 144, true],
      [13, "Q5_K", 256, 176, true], [14, "Q6_K", 256, 210, true], [15, "Q8_K", 256, 292, false],
      [24, "I8", 1, 1, false], [25, "I16", 1, 2, false], [26, "I32", 1, 4, false], [27, "I64", 1, 8, false],
      [28, "F64", 1, 8, false], [30, "BF16", 1, 2, true], [20, "IQ4_NL", 32, 18, false], [23, "IQ4_XS", 256, 136, false],
    ];
    for (const [id, name, blockSize, typeSize, supported] of expected) {
      expect(native._typeTraits(id), name).toEqual({ name, blockSize, typeSize, supported });
    }
    expect(native._typeTraits(4)).toBeUndefined(); // ids 4 and 5 (old Q4_2/Q4_3) are gone from ggml
    expect(native._typeTraits(1000)).toBeUndefined();
  });

  it("refuses unsupported types with an error naming the type", () => {
    for (const [id, name] of [[3, "Q4_1"], [11, "Q3_K"], [28, "F64"], [16, "IQ2_XXS"]] as [number, string][]) {
      expect(() => native._dequantize(id, Buffer.alloc(1024), 256)).toThrow(new RegExp(`\\b${name}\\b.*not supported`));
      expect(() => native._dot(id, Buffer.alloc(1024), new Float32Array(256), 256, 1)).toThrow(new RegExp(name));
      expect(() => native._quantize(id, new Float32Array(256))).toThrow(new RegExp(name));
    }
    expect(() => native._dequantize(77, Buffer.alloc(64), 32)).toThrow(/unknown ggml type id 77/);
  });

  it("checks sizes instead of reading past a buffer", () => {
    expect(() => native._dequantize(Q4_K, Buffer.alloc(143), 256)).toThrow(/needs 144 bytes/);
    expect(() => native._dequantize(Q4_K, Buffer.alloc(144), 100)).toThrow(/block size 256/);
    expect(() => native._dot(Q8_0, Buffer.alloc(34), new Float32Array(32), 32, 2)).toThrow(/ntok\*n/);
  });
});

describe("dequantisers match the ggml block format", () => {
  for (const [name, type] of SUPPORTED) {
    it(`${name}: random blocks`, () => {
      const r = rng(100 + type);
      for (const blocks of [1, 2, 7]) {
        const n = blocks * (blockInfo[type].bs === 1 ? 97 : blockInfo[type].bs);
        const row = randomRow(type, n, r);
        sameFloats(native._dequantize(type, row, n), dequantRef(type, row, n));
      }
    });
  }

  it("F16 and BF16: every bit pattern, including subnormals, infinities and NaN", () => {
    const all = Buffer.alloc(65536 * 2);
    for (let h = 0; h < 65536; h++) all.writeUInt16LE(h, 2 * h);
    sameFloats(native._dequantize(F16, all, 65536), dequantRef(F16, all, 65536));
    sameFloats(native._dequantize(BF16, all, 65536), dequantRef(BF16, all, 65536));
  });

  const manifest: { file: string; type: number; typeName: string; n: number; rows: number; source: string }[] =
    JSON.parse(fs.readFileSync(path.join(FIXTURES, "manifest.json"), "utf8"));
  for (const m of manifest) {
    it(`real rows: ${m.source}`, () => {
      const bytes = fs.readFileSync(path.join(FIXTURES, m.file));
      const n = m.n * m.rows; // rows are contiguous, so the whole slice is one long row
      expect(bytes.length).toBe((n / blockInfo[m.type].bs) * blockInfo[m.type].ts);
      const got: Float32Array = native._dequantize(m.type, bytes, n);
      sameFloats(got, dequantRef(m.type, bytes, n));
      // Real weights of a randomly initialised model: finite, small, not all zero.
      let ss = 0;
      for (const v of got) { expect(Number.isFinite(v)).toBe(true); ss += v * v; }
      expect(Math.sqrt(ss / n)).toBeGreaterThan(1e-4);
      expect(Math.sqrt(ss / n)).toBeLessThan(1);
      checkDot(m.type, bytes, n, 1, rng(7), m.file);
      checkDot(m.type, bytes, n, 9, rng(8), m.file);
    });
  }
});

describe("fused dot kernels match the float64 dot of the dequantised row", () => {
  const NTOK = [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31, 32, 33, 64, 65, 67];
  for (const [name, type] of SUPPORTED) {
    it(`${name}: random rows, ntok 1..67`, () => {
      const r = rng(1000 + type);
      const bs = blockInfo[type].bs;
      // Block-quantised rows come in whole blocks; element types also get lengths that are not
      // multiples of the SIMD width or of the 256-element scratch chunk.
      const lengths = bs === 1 ? [1, 7, 8, 31, 100, 256, 257, 1000, 4096 + 5] : [bs, 2 * bs, 3 * bs, 8 * bs + (bs === 32 ? bs : 0), 4096];
      for (const n of lengths) {
        const row = randomRow(type, n, r);
        for (const ntok of NTOK) checkDot(type, row, n, ntok, r, `${name} n=${n} ntok=${ntok}`);
      }
    });
    // The decode kernels factor block scales and mins out of the inner loop (d*sum(q x) - m*sum(x));
    // activations with a large common offset make those two sums large and cancelling.
    it(`${name}: activations with a large common offset`, () => {
      const r = rng(4000 + type);
      const n = 4096;
      const row = randomRow(type, n, r);
      for (const ntok of [1, 3, 8]) checkDot(type, row, n, ntok, r, `${name} offset x ntok=${ntok}`, 20);
      const wq: Buffer = native._quantize(type, new Float32Array(n).map(() => 0.02 * r.normal()));
      checkDot(type, wq, n, 1, r, `${name} offset x, quantised weights`, -20);
    });
    // The K-quants' decode on AVX-512 (native/src/ops/quant_x24.cpp) writes every 4 activations as
    // three byte digits under a shared exponent: largest values right at the digits' limit
    // (8355711.5 * 2^E), powers of two and the floats just below them, zeros, subnormals, huge
    // values, and one large value among tiny ones. The same bound as every other input.
    it(`${name}: activations at the edges of exponents and of the integer digits`, () => {
      const r = rng(6000 + type);
      const n = 4096;
      const row = randomRow(type, n, r);
      const special = (kind: number): number => {
        const e = r.int(40) - 30, sign = r.int(2) ? -1 : 1;
        switch (kind) {
          case 0: return sign * (8355711 + [-1, -0.5, 0, 0.5, 1, 1.5][r.int(6)]) * 2 ** (e - 23);
          case 1: return sign * 2 ** e;
          case 2: return sign * f(2 ** e * (1 - 2 ** -24));
          case 3: return 0;
          case 4: return sign * 2 ** -140 * (1 + r.int(100));  // subnormal
          case 5: return sign * 1e25 * r.next();
          case 6: return sign * 1e4;
          default: return sign * 1e-3 * r.next();
        }
      };
      // One kind per activation row (a kind of huge values would hide the others' errors), one
      // special value in each 4, the others normal, tiny or of the same kind.
      for (let kind = 0; kind < 8; kind++)
        for (const ntok of [1, 3]) {
          const x = new Float32Array(n * ntok);
          for (let i = 0; i < x.length; i += 4) {
            const at = r.int(4);
            for (let j = 0; j < 4; j++) x[i + j] = f(j === at ? special(kind) : [r.normal(), 1e-3 * r.normal(), special(kind)][r.int(3)]);
          }
          checkDotOn(type, row, n, x, ntok, `${name} edge x, kind ${kind}, ntok=${ntok}`);
        }
      // A NaN or an infinity among the activations makes the dot NaN or infinite, never finite.
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = new Float32Array(n).map(() => f(r.normal()));
        x[r.int(n)] = bad;
        const got: Float32Array = native._dot(type, row, x, n, 1);
        expect(Number.isFinite(got[0]), `${name} x with ${bad}`).toBe(false);
      }
    });
    it(`${name}: dot_rows (16-row prefill panels) equals dot row by row, bit for bit`, () => {
      const r = rng(5000 + type);
      const bs = blockInfo[type].bs;
      // 16896 = 66 K-quant blocks: the K-quant decode works in pieces of 64 blocks. 9, 5 and 2 rows
      // are one partial prefill panel; 37 rows are two full panels of 16 and a last one of 5.
      for (const [n, nrows] of [[bs === 1 ? 264 : 2 * Math.max(bs, 128), 9], [bs === 1 ? 13 : bs, 5], [1024, 4], [16896, 2], [512, 37]]) {
        const rows = Buffer.concat(Array.from({ length: nrows }, () => randomRow(type, n, r)));
        const stride = rows.length / nrows;
        for (const ntok of [1, 2, 3, 8, 67]) {
          const x = new Float32Array(n * ntok).map(() => f(r.normal()));
          const tiled: Float32Array = native._dotRows(type, rows, x, n, ntok, nrows);
          for (let row = 0; row < nrows; row++) {
            const one: Float32Array = native._dot(type, rows.subarray(row * stride, (row + 1) * stride), x, n, ntok);
            for (let t = 0; t < ntok; t++) expect(tiled[t * nrows + row], `${name} n=${n} ntok=${ntok} row=${row} t=${t}`).toBe(one[t]);
          }
        }
      }
    });
    it(`${name}: quantised normal weights, a long row`, () => {
      const r = rng(2000 + type);
      const n = 16384;
      const w = new Float32Array(n).map(() => 0.02 * r.normal());
      const row: Buffer = native._quantize(type, w);
      for (const ntok of [1, 4, 32]) checkDot(type, row, n, ntok, r, `${name} n=${n} ntok=${ntok}`);
    });
  }
});

describe("quantisers", () => {
  // Relative RMS round-trip error on normal(0, 1) rows; measured values are well inside these.
  const bound: Record<number, number> = {
    [F32]: 0, [F16]: 3e-4, [BF16]: 3e-3, [Q8_0]: 7e-3, [Q6_K]: 2.5e-2, [Q5_K]: 5e-2, [Q4_K]: 1e-1, [Q4_0]: 1e-1,
  };
  for (const [name, type] of SUPPORTED) {
    it(`${name}: quantise -> dequantise round trip`, () => {
      const r = rng(3000 + type);
      const n = 4096;
      const x = new Float32Array(n).map(() => f(r.normal()));
      const q: Buffer = native._quantize(type, x);
      expect(q.length).toBe((n / blockInfo[type].bs) * blockInfo[type].ts);
      const y = dequantRef(type, q, n); // the reference decoder reads what the quantiser wrote
      let err = 0, ss = 0, maxAbs = 0;
      for (let i = 0; i < n; i++) { err += (y[i] - x[i]) ** 2; ss += x[i] ** 2; }
      for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(y[i] - x[i]));
      expect(Math.sqrt(err / ss), name).toBeLessThanOrEqual(bound[type]);
      // No element is off by more than a couple of quantisation steps of its block.
      expect(maxAbs, name).toBeLessThan(type === F32 ? 1e-30 : 1.0);
      // Zeros and constants survive: no division by a zero scale.
      const zeros: Float32Array = native._dequantize(type, native._quantize(type, new Float32Array(n)), n);
      expect(zeros.every((v) => v === 0)).toBe(true);
      const ones: Float32Array = native._dequantize(type, native._quantize(type, new Float32Array(n).fill(0.5)), n);
      for (const v of ones) expect(Math.abs(v - 0.5)).toBeLessThan(0.05);
    });
  }
  // Inputs of 64K values and more are quantised by several threads in pieces of whole blocks.
  it("a large input gives the same bytes as its 64K-value pieces quantised one by one", () => {
    const r = rng(77);
    const n = (1 << 18) + 3 * 256;  // pieces that do not all hold the same number of blocks
    const x = new Float32Array(n).map(() => f(r.normal()));
    for (const [name, type] of SUPPORTED) {
      const whole: Buffer = native._quantize(type, x);
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i += 1 << 16) parts.push(native._quantize(type, x.subarray(i, Math.min(n, i + (1 << 16)))));
      expect(Buffer.compare(whole, Buffer.concat(parts)), name).toBe(0);
    }
  });
});

describe("opt-in fast mode: int8 activations (not exact)", () => {
  // The activation rounding, not the arithmetic, sets the error: each 32-block of x is rounded to
  // 1/254 of its largest value (each 256-block, for the K-quants below). Against the float64 dot that
  // is about 1e-2 of the rss scale here; the AVX2 and portable kernels of the fast mode agree with
  // each other to float32 rounding. Q8_0 and Q4_0 take activations rounded per 32 (_dotQ8Act):
  const FAST: [string, number][] = [["Q8_0", Q8_0], ["Q4_0", Q4_0]];
  for (const [name, type] of FAST) {
    it(`${name}: fast dot vs its portable twin and vs the exact dot`, () => {
      const r = rng(6000 + type);
      for (const n of [256, 1024, 4096]) {
        const row = native._quantize(type, new Float32Array(n).map(() => 0.02 * r.normal()));
        const w = dequantRef(type, row, n);
        for (const ntok of [1, 3]) {
          const x = new Float32Array(n * ntok).map(() => f(r.normal()));
          const xq: Buffer = native._quantizeQ8Act(x, n);
          expect(xq.length).toBe(1.25 * n * ntok); // int8 values, then a scale and a sum per 32
          const fast: Float32Array = native._dotQ8Act(type, row, xq, n, ntok);
          const portable: Float32Array = native._dotQ8ActScalar(type, row, xq, n, ntok);
          for (let t = 0; t < ntok; t++) {
            let ref = 0, rss = 0;
            for (let i = 0; i < n; i++) { const p = w[i] * x[t * n + i]; ref += p; rss += p * p; }
            rss = Math.sqrt(rss);
            expect(Math.abs(fast[t] - portable[t]) / rss, `${name} n=${n} t=${t}`).toBeLessThan(1e-5);
            expect(Math.abs(fast[t] - ref) / rss, `${name} n=${n} t=${t}`).toBeLessThan(5e-2);
          }
        }
      }
    });
  }
  // Decode hands each thread a run of rows in one call: each row's result must land at its own place.
  // Where Q8_0 has the AVX-512 VNNI tile (3 tokens and more), it works on panels of 16 rows, 8 tokens
  // and 32 blocks at a time: 37 rows end in a partial panel, 9 and 130 tokens in partial tiles, and
  // n = 4096 takes four rounds of blocks.
  for (const [name, type] of FAST) {
    it(`${name}: fast dot over many rows at once equals the portable kernel row by row`, () => {
      const r = rng(6100 + type);
      for (const [n, rows, ntok] of [[512, 7, 1], [512, 7, 2], [512, 37, 3], [4096, 37, 9], [1024, 21, 130]]) {
      const w = native._quantize(type, new Float32Array(n * rows).map(() => 0.02 * r.normal()));
      {
        const x = new Float32Array(n * ntok).map(() => f(r.normal()));
        const xq: Buffer = native._quantizeQ8Act(x, n);
        const fast: Float32Array = native._dotQ8Act(type, w, xq, n, ntok, rows);
        const stride = w.length / rows;
        for (let i = 0; i < rows; i++) {
          const portable: Float32Array = native._dotQ8ActScalar(type, w.subarray(i * stride, (i + 1) * stride), xq, n, ntok);
          for (let t = 0; t < ntok; t++) {
            const got = fast[t * rows + i], want = portable[t];
            expect(Math.abs(got - want), `${name} n=${n} ntok=${ntok} row ${i} token ${t}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
          }
        }
      }
      }
    });
  }
  // The K-quants' fast mode: activations rounded per 256 (_quantizeQ8K); 1-2 tokens dot row by row,
  // more run against panels of 16 rows in tiles of 4 tokens: 37 rows are two panels and a partial
  // one, 9 tokens two tiles and one left over, 130 tokens more than one call of matmul.cpp's
  // 128-token tile.
  // The reference is float64 over the dequantised weights and the dequantised int8 activations: what
  // the kernel must compute, up to float32 rounding.
  const q8kRows = (buf: Buffer, n: number, ntok: number) => {
    const ld = n + (n / 256) * 4 + (n / 16) * 2;
    return Array.from({ length: ntok }, (_, t) => {
      const o = buf.byteOffset + t * ld;
      const qs = new Int8Array(buf.buffer, o, n);
      const d = new Float32Array(buf.buffer.slice(o + n, o + n + (n / 256) * 4));
      const bsums = new Int16Array(buf.buffer.slice(o + n + (n / 256) * 4, o + ld));
      return { qs, d, bsums };
    });
  };
  const GEMM: [string, number][] = [["Q4_K", Q4_K], ["Q5_K", Q5_K], ["Q6_K", Q6_K]];
  const AVX2 = native.dotKernel !== "scalar"; // the K-quants' int8 kernel needs AVX2 (without, they stay exact)
  for (const [name, type] of GEMM) {
    it.skipIf(!AVX2)(`${name}: the fast kernel equals float64 over its dequantised inputs, row by row and token by token`, () => {
      const r = rng(6300 + type);
      for (const [n, rows, ntok] of [[256, 37, 9], [2048, 3, 5], [512, 17, 130], [256, 1, 2], [768, 16, 3], [1024, 5, 1]]) {
        const w = native._quantize(type, new Float32Array(n * rows).map(() => 0.02 * r.normal()));
        // Blocks of very different magnitudes, as real activations have.
        const x = new Float32Array(n * ntok).map((_, i) => f(r.normal() * ((i >> 5) % 3 === 0 ? 8 : 0.1)));
        const xq: Buffer = native._quantizeQ8K(x, n);
        const ys = q8kRows(xq, n, ntok);
        const got: Float32Array = native._gemmQ8K(type, w, xq, n, ntok, rows);
        const stride = w.length / rows;
        for (let i = 0; i < rows; i++) {
          const wr = dequantRef(type, w.subarray(i * stride, (i + 1) * stride), n);
          for (let t = 0; t < ntok; t++) {
            let want = 0, rss = 0;
            for (let j = 0; j < n; j++) {
              const y = ys[t].qs[j] * ys[t].d[j >> 8];
              want += wr[j] * y;
              rss += (wr[j] * y) ** 2;
            }
            expect(Math.abs(got[t * rows + i] - want) / Math.sqrt(rss), `${name} n=${n} row ${i} token ${t}`).toBeLessThan(1e-5);
          }
        }
      }
    });
  }
  // The same kernel against its portable twin, from 1 token (decode steps: a GEMV per row) to
  // tiles of several, 7 rows per call (a thread's run of rows), and against the exact dot.
  for (const [name, type] of GEMM) {
    it.skipIf(!AVX2)(`${name}: the fast kernel vs its portable twin and vs the exact dot, 1 to 6 tokens`, () => {
      const r = rng(6400 + type), rows = 7;
      for (const n of [256, 1024]) {
        const w = native._quantize(type, new Float32Array(n * rows).map(() => 0.02 * r.normal()));
        const stride = w.length / rows;
        for (const ntok of [1, 2, 3, 6]) {
          const x = new Float32Array(n * ntok).map(() => f(r.normal()));
          const xq: Buffer = native._quantizeQ8K(x, n);
          const fast: Float32Array = native._gemmQ8K(type, w, xq, n, ntok, rows);
          const portable: Float32Array = native._gemmQ8KScalar(type, w, xq, n, ntok, rows);
          for (let i = 0; i < rows; i++) {
            const wr = dequantRef(type, w.subarray(i * stride, (i + 1) * stride), n);
            for (let t = 0; t < ntok; t++) {
              let ref = 0, rss = 0;
              for (let j = 0; j < n; j++) { const p = wr[j] * x[t * n + j]; ref += p; rss += p * p; }
              rss = Math.sqrt(rss);
              const got = fast[t * rows + i], label = `${name} n=${n} ntok=${ntok} row ${i} token ${t}`;
              expect(Math.abs(got - portable[t * rows + i]) / rss, label).toBeLessThan(1e-5);
              expect(Math.abs(got - ref) / rss, label).toBeLessThan(5e-2);
            }
          }
        }
      }
    });
  }
  it("rounds activations per 256 for the K-quants and per 32 for Q8_0 and Q4_0, and says which", () => {
    const xq = native._quantizeQ8K(new Float32Array(256));
    expect(() => native._gemmQ8K(Q8_0, Buffer.alloc(272), xq, 256, 1)).toThrow(/Q8_0 has no int8-activation fast mode against per-256 activations/);
    expect(() => native._dotQ8Act(Q4_K, Buffer.alloc(144), native._quantizeQ8Act(new Float32Array(256)), 256, 1)).toThrow(
      /Q4_K has no int8-activation fast mode against per-32 activations/);
    expect(() => native._quantizeQ8K(new Float32Array(96))).toThrow(/not rows of a multiple of 256/);
  });
  // Each quantiser twice: the one the fast mode uses (AVX2 here) and the portable one that stands in
  // for it on CPUs without AVX2, which would otherwise go untested on this machine.
  const quantizers = (registry: string, portable: string) => [
    ["registry's", (x: Float32Array, n: number): Buffer => native[registry](x, n)],
    ["portable", (x: Float32Array, n: number): Buffer => native[portable](x, n)],
  ] as const;
  it.each(quantizers("_quantizeQ8K", "_quantizeQ8KScalar"))("quantises the prefill kernel's activations as specified (%s): one scale amax/127 per 256, integer 16-sums", (_, quantize) => {
    // A JS model of quantize_q8k (float32 arithmetic via Math.fround) against the addon's bytes; a
    // block of zeros, one with ties (x * id landing on .5) and one of mixed magnitudes.
    const r = rng(6210), n = 768;
    const x = new Float32Array(n).map((_, i) => (i < 256 ? 0 : i < 512 ? (i % 7) * 0.5 - 1.5 : f(r.normal() * 10 ** ((i >> 5) % 8 - 4))));
    x[300] = 127; // the tie block: amax 127 gives id 1, and the halves round to even
    const [y] = q8kRows(quantize(x, n), n, 1);
    const rint = (v: number) => { const fl0 = Math.floor(v), diff = v - fl0; return diff > 0.5 || (diff === 0.5 && fl0 % 2 !== 0) ? fl0 + 1 : fl0; };
    for (let b = 0; b < n / 256; b++) {
      let amax = 0;
      for (let j = 0; j < 256; j++) amax = Math.max(amax, Math.abs(x[256 * b + j]));
      const d = Math.fround(amax / 127), id = d ? Math.fround(1 / d) : 0;
      expect(y.d[b], `block ${b} scale`).toBe(d);
      for (let h = 0; h < 16; h++) {
        let sum = 0;
        for (let j = 16 * h; j < 16 * h + 16; j++) {
          const q = rint(Math.fround(x[256 * b + j] * id));
          expect(y.qs[256 * b + j], `block ${b} element ${j}`).toBe(q);
          sum += q;
        }
        expect(y.bsums[16 * b + h], `block ${b} sum ${h}`).toBe(sum);
      }
    }
  });
  it.each(quantizers("_quantizeQ8Act", "_quantizeQ8ActScalar"))("quantises activations as specified (%s): scale amax/127, nearest-even rounding, float sums", (_, quantize) => {
    // A JS model of quantize_q8act (float32 arithmetic via Math.fround) against the addon's bytes;
    // blocks of zeros, of ties (x * id landing on .5) and of mixed magnitudes.
    const r = rng(6200), n = 256;
    const x = new Float32Array(n).map((_, i) => (i < 32 ? 0 : i < 64 ? (i % 7) * 0.5 - 1.5 : f(r.normal() * 10 ** ((i >> 5) - 4))));
    x[40] = 127; // a tie block: amax 127 gives id 1, and the halves round to even
    const buf: Buffer = quantize(x, n);
    expect(buf.length).toBe(1.25 * n);
    const qs = new Int8Array(buf.buffer, buf.byteOffset, n);
    const fl = new Float32Array(buf.buffer.slice(buf.byteOffset + n, buf.byteOffset + 1.25 * n));
    const nb = n / 32, d = fl.subarray(0, nb), s32 = fl.subarray(nb, 2 * nb);
    const rint = (v: number) => { const fl0 = Math.floor(v), diff = v - fl0; return diff > 0.5 || (diff === 0.5 && fl0 % 2 !== 0) ? fl0 + 1 : fl0; };
    for (let k = 0; k < nb; k++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * k + j]));
      const dk = Math.fround(amax / 127), id = dk ? Math.fround(1 / dk) : 0;
      expect(d[k], `block ${k} scale`).toBe(dk);
      let sum = 0;
      for (let j = 0; j < 32; j++) {
        const q = rint(Math.fround(x[32 * k + j] * id));
        expect(qs[32 * k + j], `block ${k} element ${j}`).toBe(q);
        sum += q;
      }
      expect(s32[k]).toBe(Math.fround(dk * sum));
    }
  });
  it("rounds activations to the same bytes with the AVX2 and the portable quantisers", () => {
    // Many rows of many magnitudes (each 32-block its own decade, some blocks all zero, some with a
    // single huge value), so that every path through the scale and rounding steps is taken.
    const r = rng(6230), n = 4096, rows = 3;
    const x = new Float32Array(n * rows).map((_, i) => ((i >> 5) % 11 === 3 ? 0 : f(r.normal() * 10 ** (((i >> 5) % 13) - 6))));
    x[777] = 3e38;
    x[5000] = -1e-30;
    expect(native._quantizeQ8ActScalar(x, n).equals(native._quantizeQ8Act(x, n))).toBe(true);
    expect(native._quantizeQ8KScalar(x, n).equals(native._quantizeQ8K(x, n))).toBe(true);
  });
  it("has no fast mode for float weights, and says so", () => {
    const xq = native._quantizeQ8Act(new Float32Array(64));
    expect(() => native._dotQ8Act(F32, Buffer.alloc(256), xq, 64, 1)).toThrow(/F32 has no int8-activation fast mode/);
  });
});
