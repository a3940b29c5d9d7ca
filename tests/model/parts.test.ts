/**
 * The parts of the forward pass against their definitions: RoPE against a float64 formula at
 * positions up to 10^7, SwiGLU's silu gate against float64, the temperature factor against spec
 * Appendix B, the chunk mask at 8191/8192/8193 (and with a configured chunk size), the layer plan of
 * both fixture models.
 */
import * as fs from "fs";
import { describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { addon } from "../../engine/src/native";
import { fixture, hfCopyWith } from "../helpers";

const a = addon() as unknown as {
  _rope(x: Float32Array, T: number, H: number, Dh: number, pos: Float64Array, freq: Float64Array): Float32Array;
  _attnTemperature(scale: number, floor: number, p: number): number;
  _siluMul(gate: Float32Array, up: Float32Array): Float32Array;
};

describe("RoPE (interleaved pairs, float64 angles)", () => {
  it("matches a float64 rotation at positions 0 .. 10^7", () => {
    const Dh = 128, H = 2;
    const pos = Float64Array.from([0, 1, 8191, 8192, 100000, 1000000, 9999999]);
    const T = pos.length;
    // Scout's frequencies: pairs 35..63 divided by 16 (spec §2.4).
    const freq = Float64Array.from({ length: Dh / 2 }, (_, j) => 500000 ** (-(2 * j) / Dh) / (j >= 35 ? 16 : 1));
    const x = Float32Array.from({ length: T * H * Dh }, (_, i) => Math.sin(i * 12.9898) * 2);
    const y = a._rope(x, T, H, Dh, pos, freq);
    let worst = 0;
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        for (let j = 0; j < Dh / 2; j++) {
          const o = (t * H + h) * Dh + 2 * j;
          const ang = pos[t] * freq[j];
          const e0 = x[o] * Math.cos(ang) - x[o + 1] * Math.sin(ang);
          const e1 = x[o] * Math.sin(ang) + x[o + 1] * Math.cos(ang);
          worst = Math.max(worst, Math.abs(y[o] - e0), Math.abs(y[o + 1] - e1));
        }
    // float32 storage of |x| <= 2 values: a few ulps, at every position (float32 angles would be off by 0.5 rad at 10^7).
    expect(worst).toBeLessThan(2e-6);
  });
});

describe("SwiGLU gate silu(g) * u", () => {
  it("is within 4 ulp of float64 from -100 to 100, and 0 / g / NaN at the extremes", () => {
    // The AVX2 path computes exp with a polynomial (ops/elementwise.cpp); the portable one with expf.
    const n = 200003; // not a multiple of 8: the scalar tail too
    const g = Float32Array.from({ length: n }, (_, i) => -100 + (200 * i) / (n - 1));
    const u = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7) / 8);
    const y = a._siluMul(g, u);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
      if (Math.abs(want) < 1e-30) { expect(Math.abs(y[i]), `g = ${g[i]}`).toBeLessThan(1e-30); continue; }
      worst = Math.max(worst, Math.abs(y[i] - want) / Math.abs(want));
    }
    expect(worst).toBeLessThan(4 * 2 ** -23);
    const edge = a._siluMul(Float32Array.from([-1e30, 1e30, NaN, 0, -0]), Float32Array.from([1, 1, 1, 1, 1]));
    expect(Math.abs(edge[0])).toBeLessThan(1e-30);
    expect(edge[1]).toBe(Math.fround(1e30));
    expect(edge[2]).toBeNaN();
    expect(edge[3]).toBe(0);
  });
});

describe("attention temperature tuning (spec App. B)", () => {
  const cases: [number, number][] = [[0, 1], [8190, 1], [8191, 1.0693147], [16383, 1.1098612], [100000, 1.256495], [1000000, 1.481218], [9999999, 1.7107425]];
  for (const [p, s] of cases) it(`s(${p}) = ${s}`, () => expect(a._attnTemperature(0.1, 8192, p)).toBeCloseTo(s, 6));
});

describe("layer plan", () => {
  it("tiny-scout: chunked RoPE layers 0-2 with QK-norm, global NoPE layer 3 with temperature tuning, all MoE", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    expect(m.layerPlan.map((l) => [l.useRope, l.chunkedAttn, l.qkNorm, l.temperatureTuning, l.isMoe])).toEqual([
      [true, true, true, false, true], [true, true, true, false, true], [true, true, true, false, true], [false, false, false, true, true],
    ]);
  });
  it("tiny-maverick: MoE on odd layers, no QK-norm (GGUF and HF agree)", async () => {
    for (const f of [fixture("tiny-maverick", "model.gguf"), fixture("tiny-maverick", "hf")]) {
      const m = await Model.load(f);
      expect(m.layerPlan.map((l) => [l.useRope, l.qkNorm, l.isMoe])).toEqual([[true, false, false], [true, false, true], [true, false, false], [false, false, true]]);
    }
  });
});

function maskRows(trace: Awaited<ReturnType<Model["run"]>>, layer: number) {
  const p = trace.pattern(layer, 0);
  return (pos: number) => {
    const r = p.positions.indexOf(pos);
    const row = p.data.subarray(r * p.keys, (r + 1) * p.keys);
    const nz = [...row.keys()].filter((k) => row[k] > 0);
    return { first: nz[0], last: nz[nz.length - 1], sum: row.reduce((s, v) => s + v, 0) };
  };
}

describe("chunked attention mask", () => {
  it("at 8191 / 8192 / 8193: chunked layers restart at 8192, the global layer sees everything", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    const tokens = Int32Array.from({ length: 8194 }, (_, i) => 32 + (i * 7) % 200);
    const tr = await m.run(tokens, { capture: { names: ["blocks.0.attn.hook_pattern", "blocks.3.attn.hook_pattern"], positions: { begin: 8191 }, heads: [0] } });
    const chunked = maskRows(tr, 0), global = maskRows(tr, 3);
    expect(chunked(8191)).toMatchObject({ first: 0, last: 8191 });
    expect(chunked(8192)).toMatchObject({ first: 8192, last: 8192, sum: 1 });
    expect(chunked(8193)).toMatchObject({ first: 8192, last: 8193 });
    for (const p of [8191, 8192, 8193]) {
      expect(global(p)).toMatchObject({ first: 0, last: p });
      expect(chunked(p).sum).toBeCloseTo(1, 5);
    }
  });

  it("follows attention_chunk_size from config.json (chunk 16: restarts at 16 and 32)", async () => {
    const dir = hfCopyWith("tiny-scout", { attention_chunk_size: 16 }, "moescope-chunk-");
    const m = await Model.load(dir);
    expect(m.config.attnChunk).toBe(16);
    // Prefill 20 tokens, then decode across the next boundary: both paths must apply the mask.
    const tr = await m.run(Int32Array.from({ length: 20 }, (_, i) => 40 + i), { maxNewTokens: 16, stopAtEog: false, capture: { names: ["blocks.1.attn.hook_pattern"], heads: [0] } });
    const rows = maskRows(tr, 1);
    expect(rows(15)).toMatchObject({ first: 0, last: 15 });
    expect(rows(16)).toMatchObject({ first: 16, last: 16 });
    expect(rows(31)).toMatchObject({ first: 16, last: 31 });
    expect(rows(32)).toMatchObject({ first: 32, last: 32 });
    expect(rows(35)).toMatchObject({ first: 32, last: 35 });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
