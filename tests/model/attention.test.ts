/**
 * Attention against float64, where the kernel cuts its work: it takes up to 8 query tokens at a time
 * and visits the keys 256 at a time (native/src/ops/attention.cpp), carrying each output's sum from
 * one pass to the next. Every captured pattern row and attention output z must be softmax(q·k/√Dh)
 * and its weighted sum of v, recomputed here in float64 from the captured rot_q, rot_k and v: over
 * 300 keys (two passes), and with 12-token chunks (the prompt goes in segments of 12, which do not
 * split into whole query blocks of 8) followed by decode steps; and for Scout's five query heads per
 * KV head with a head dim that is not a multiple of 16, where the AVX-512 kernels pair heads and
 * leave the odd one to AVX2: there they must give the AVX2 kernels' bits; and for a head dim that
 * only the portable kernels take.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { PRESETS, SynthPreset, synthesize } from "../../engine/src/synth";
import type { Trace } from "../../engine/src/trace";
import { fixture, hfCopyWith } from "../helpers";

// Worst errors of layer l's captured pattern and z against float64, over every position and head
// (pattern: absolute; z: relative to the largest |z| of the layer).
function attentionErrors(tr: Trace, l: number, H: number, Hkv: number, Dh: number, chunk: number) {
  const q = tr.get(`blocks.${l}.attn.hook_rot_q`), k = tr.get(`blocks.${l}.attn.hook_rot_k`), v = tr.get(`blocks.${l}.attn.hook_v`);
  const z = tr.get(`blocks.${l}.attn.hook_z`), pat = tr.get(`blocks.${l}.attn.hook_pattern`);
  const T = q.shape[0], S = pat.shape[2]; // pattern: [H, T, key positions]
  let patErr = 0, zErr = 0, zMax = 0;
  for (const x of z.data) zMax = Math.max(zMax, Math.abs(x));
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv)), lo = chunk > 0 ? Math.floor(t / chunk) * chunk : 0;
      const s: number[] = [];
      for (let j = lo; j <= t; j++) {
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += q.data[(t * H + h) * Dh + d] * k.data[(j * Hkv + hk) * Dh + d];
        s.push(dot / Math.sqrt(Dh));
      }
      const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < S; j++) {
        const p = j >= lo && j <= t ? e[j - lo] / sum : 0;
        patErr = Math.max(patErr, Math.abs(pat.data[(h * T + t) * S + j] - p));
      }
      for (let d = 0; d < Dh; d++) {
        let o = 0;
        for (let j = lo; j <= t; j++) o += (e[j - lo] / sum) * v.data[(j * Hkv + hk) * Dh + d];
        zErr = Math.max(zErr, Math.abs(z.data[(t * H + h) * Dh + d] - o) / zMax);
      }
    }
  return { patErr, zErr };
}

// Every layer's captured patterns and z against float64 (chunk(l): layer l's chunk size, 0 = global).
function expectFloat64(tr: Trace, c: Model["config"], chunk: (l: number) => number = () => 0) {
  for (let l = 0; l < c.nLayer; l++) {
    const { patErr, zErr } = attentionErrors(tr, l, c.nHead, c.nHeadKv, c.headDim, chunk(l));
    expect(patErr, `layer ${l} pattern`).toBeLessThan(2e-6);
    expect(zErr, `layer ${l} z`).toBeLessThan(5e-6);
  }
}

// A tiny F32 model with tiny-scout's shapes but these attention shapes, synthesised for the test.
async function withSynth(shape: Partial<SynthPreset>, seed: number, f: (m: Model, dir: string, file: string) => Promise<void>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-attn-"));
  const name = `test-attn-${seed}`;
  try {
    PRESETS[name] = { ...PRESETS["tiny-scout"], description: "attention test", ...shape };
    const file = path.join(dir, `${name}.gguf`);
    await synthesize({ preset: name, type: "F32", out: file, seed, log: () => {} });
    await f(await Model.load(file), dir, file);
  } finally {
    delete PRESETS[name];
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const names = (layers: number) =>
  Array.from({ length: layers }, (_, l) => ["hook_rot_q", "hook_rot_k", "hook_v", "hook_z", "hook_pattern"].map((n) => `blocks.${l}.attn.${n}`)).flat();

describe("attention in query blocks and key passes", () => {
  it("300 tokens (keys in two passes of 256, the last query block partial) give float64's patterns and outputs", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    const c = m.config;
    const tokens = Int32Array.from({ length: 300 }, (_, i) => 32 + ((i * 7919) % 600));
    const tr = await m.run(tokens, { capture: names(c.nLayer) });
    expectFloat64(tr, c);
  });

  it("12-token chunks (segments of 12 in blocks of 8 queries), in the prompt and in decode steps", async () => {
    const dir = hfCopyWith("tiny-scout", { attention_chunk_size: 12 }, "moescope-chunk12-");
    const m = await Model.load(dir);
    const c = m.config;
    expect(c.attnChunk).toBe(12);
    const tr = await m.run(Int32Array.from({ length: 45 }, (_, i) => 40 + i), { maxNewTokens: 8, stopAtEog: false, capture: names(c.nLayer) });
    expectFloat64(tr, c, (l) => (c.layers[l].chunkedAttn ? 12 : 0));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("five query heads per KV head, head dim 24: float64's patterns and outputs, and the AVX2 kernels' bits", async () => {
    // Scout's grouping (40 heads over 8 KV heads) in a tiny F32 model: the F32 matmuls are the
    // same kernels with and without AVX-512, so everything that differs would be attention's.
    await withSynth({ heads: 10, kvHeads: 2, headDim: 24 }, 5, async (m, dir, file) => {
      const c = m.config;
      expect(c.nHead / c.nHeadKv).toBe(5);
      const tokens = Array.from({ length: 300 }, (_, i) => 32 + ((i * 7919) % 600));
      const tr = await m.run(Int32Array.from(tokens), { capture: names(c.nLayer), logitsLast: 300 });
      expectFloat64(tr, c);
      if (c.dotKernel !== "avx512+avx2+fma") return;
      const script = `
        const { Model } = require(${JSON.stringify(path.resolve(__dirname, "../../dist/engine/src/index.js"))});
        const fs = require("fs"), [file, out] = process.argv.slice(1);
        (async () => {
          const m = await Model.load(file);
          if (m.config.dotKernel !== "avx2+fma") throw new Error("not held to AVX2: " + m.config.dotKernel);
          const tr = await m.run(Int32Array.from(${JSON.stringify(tokens)}), { capture: ["blocks.3.attn.hook_z"], logitsLast: 300 });
          fs.writeFileSync(out, Buffer.concat([Buffer.from(tr.get("blocks.3.attn.hook_z").data.buffer), Buffer.from(tr.logits.buffer)]));
        })();`;
      const out = path.join(dir, "avx2.bin");
      execFileSync(process.execPath, ["-e", script, file, out], { env: { ...process.env, MOESCOPE_NO_AVX512: "1" } });
      const z = tr.get("blocks.3.attn.hook_z").data as Float32Array;
      const mine = Buffer.concat([Buffer.from(z.buffer, z.byteOffset, z.byteLength), Buffer.from(tr.logits.buffer, tr.logits.byteOffset, tr.logits.byteLength)]);
      expect(mine.equals(fs.readFileSync(out))).toBe(true);
    });
  });

  it("head dim 20 (not a multiple of 8: the portable kernels) gives float64's patterns and outputs", async () => {
    await withSynth({ headDim: 20 }, 6, async (m) => {
      const c = m.config;
      expect(c.headDim).toBe(20);
      const tr = await m.run(Int32Array.from({ length: 300 }, (_, i) => 32 + ((i * 7919) % 600)), { capture: names(c.nLayer) });
      expectFloat64(tr, c);
    });
  });
});
