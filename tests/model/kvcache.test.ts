/**
 * The BF16 KV cache (run option kvCache) and KV memory planning. BF16 must round keys and values
 * once, as they enter the cache, and change nothing else: the attention pattern it reports is
 * softmax(q · bf16(k)) recomputed here in float64 from the captured float keys, and the F32 default
 * stays what it was. The planner must give the numbers for Scout: 1M tokens = about 47 GiB in
 * BF16 (chunked layers keep one 8192-token chunk), not the 183 GiB of a cache without chunks.
 */
import { describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { kvCacheBytes, presetKvShape } from "../../engine/src/memory";
import { PRESETS } from "../../engine/src/synth";
import { fixture, prompt } from "../helpers";

const GiB = 2 ** 30;

function bf16(x: number): number {
  // Round to nearest even on the top 16 bits, as fp32_to_bf16 does.
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return f[0];
}

// softmax(q·k / sqrt(Dh)) with Llama 4's masks, in float64, from captured rot_q / rot_k.
function pattern(q: Float32Array, k: Float32Array, T: number, H: number, Hkv: number, Dh: number, chunk: number, round: (x: number) => number) {
  const out = new Float64Array(H * T * T);
  for (let h = 0; h < H; h++) {
    const hk = Math.floor(h / (H / Hkv));
    for (let t = 0; t < T; t++) {
      const lo = chunk > 0 ? Math.floor(t / chunk) * chunk : 0;
      const s: number[] = [];
      for (let j = lo; j <= t; j++) {
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += q[(t * H + h) * Dh + d] * round(k[(j * Hkv + hk) * Dh + d]);
        s.push(dot / Math.sqrt(Dh));
      }
      const mx = Math.max(...s);
      const e = s.map((v) => Math.exp(v - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = lo; j <= t; j++) out[(h * T + t) * T + j] = e[j - lo] / sum;
    }
  }
  return out;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe("KV cache element type", () => {
  it("bf16 rounds keys once as they enter the cache: the pattern is softmax(q . bf16(k)); f32 is unrounded", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    const c = m.config;
    const tokens = m.tokenize(prompt("p1"));
    const T = tokens.length;
    const names = [0, 3].flatMap((l) => [`blocks.${l}.attn.hook_rot_q`, `blocks.${l}.attn.hook_rot_k`, `blocks.${l}.attn.hook_pattern`]);
    const f32 = await m.run(tokens, { capture: names, logitsLast: T });
    const b16 = await m.run(tokens, { capture: names, logitsLast: T, kvCache: "bf16" });
    expect(b16.record.sampling.kvCache).toBe("bf16");
    expect(f32.record.sampling.kvCache).toBe("f32");
    for (const l of [0, 3]) {
      const chunk = c.layers[l].chunkedAttn ? c.attnChunk : 0;
      const get = (tr: typeof f32, n: string) => tr.get(`blocks.${l}.attn.hook_${n}`).data as Float32Array;
      // Layer 0's q and k are computed before any cache is read: identical in both runs (later
      // layers see residuals that the rounding already moved).
      if (l === 0) expect(maxAbs(get(f32, "rot_k"), get(b16, "rot_k"))).toBe(0);
      const ref16 = pattern(get(b16, "rot_q"), get(b16, "rot_k"), T, c.nHead, c.nHeadKv, c.headDim, chunk, bf16);
      const ref32 = pattern(get(f32, "rot_q"), get(f32, "rot_k"), T, c.nHead, c.nHeadKv, c.headDim, chunk, (x) => x);
      expect(maxAbs(get(b16, "pattern"), ref16), `layer ${l} bf16`).toBeLessThan(2e-6);
      expect(maxAbs(get(f32, "pattern"), ref32), `layer ${l} f32`).toBeLessThan(2e-6);
      // ... and the rounding is visible (the test would pass vacuously if bf16 were ignored).
      expect(maxAbs(get(b16, "pattern"), ref32), `layer ${l} bf16 differs from f32`).toBeGreaterThan(1e-5);
    }
    // Logits move by rounding, not by a semantic change.
    let num = 0, den = 0;
    for (let i = 0; i < f32.logits.length; i++) { num += (f32.logits[i] - b16.logits[i]) ** 2; den += f32.logits[i] ** 2; }
    expect(Math.sqrt(num / den)).toBeLessThan(2e-2);
    expect(Math.sqrt(num / den)).toBeGreaterThan(0);
  });

  it("refuses an unknown cache type, naming the option", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    await expect(m.run([1, 2, 3], { kvCache: "fp8" as never })).rejects.toThrow(/kvCache must be "f32" or "bf16"/);
  });
});

describe("KV memory planning", () => {
  it("Scout at 1M tokens: about 47 GiB in BF16, twice that in F32, 183 GiB without chunked layers", () => {
    const scout = presetKvShape(PRESETS.scout);
    expect(scout.layers.filter((l) => !l.chunkedAttn).length).toBe(12);
    const bf = kvCacheBytes(scout, 1_000_000, "bf16") / GiB;
    expect(bf).toBeGreaterThan(46.5);
    expect(bf).toBeLessThan(47.5);
    expect(kvCacheBytes(scout, 1_000_000, "f32")).toBe(2 * kvCacheBytes(scout, 1_000_000, "bf16"));
    const unchunked = { ...scout, layers: scout.layers.map(() => ({ chunkedAttn: false })) };
    expect(Math.round(kvCacheBytes(unchunked, 1_000_000, "bf16") / GiB)).toBe(183);
    // Below one chunk every layer holds every token.
    expect(kvCacheBytes(scout, 4096, "bf16")).toBe(48 * 4096 * 2 * 8 * 128 * 2);
  });

  it("a loaded model estimates what its runs allocate", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    const c = m.config;
    const n = 3 * c.attnChunk + 5;
    const per = 2 * c.nHeadKv * c.headDim * 4;
    const expected = c.layers.reduce((s, l) => s + (l.chunkedAttn ? c.attnChunk : n), 0) * per;
    expect(m.estimateKvCache(n)).toBe(expected);
    expect(m.estimateKvCache(n, "bf16")).toBe(expected / 2);
  });
});
