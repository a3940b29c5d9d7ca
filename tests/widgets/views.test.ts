/**
 * Views on real runs of the tiny fixtures: every view emits the four-part bundle (plotly JSON, HTML
 * with a static image and no network references, a valid non-blank PNG of the stated size, text);
 * plotly.js is shipped once per kernel; the logit lens is exact at the last layer; comparisons count
 * routing changes; live generation updates one display in place; and a 10,000-token trace gives
 * bounded outputs that say what they left out.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { Trace } from "../../engine/src/trace";
import { MIMEBUNDLE, setFrontend, MimeBundle, toMimeBundle } from "../../engine/src/display";
import * as V from "../../widgets/src/index";
import { resetPlotlyShipped } from "../../widgets/src/plotly-source";
import { View } from "../../widgets/src/view";
import { fixture } from "../helpers";

// Typed by hand (see widgets/src/png.ts): metadata and pixel statistics are all the tests need.
const sharp = require("sharp") as (b: Buffer) => { metadata(): Promise<{ format: string; width: number; height: number }>; stats(): Promise<{ channels: { min: number; max: number }[] }> };

const PROMPT = "The quick brown fox jumps over the lazy dog";
let model: Model;
let trace: Trace;

beforeAll(async () => {
  model = await Model.load(fixture("tiny-scout", "model.gguf"));
  trace = await model.run(PROMPT, { capture: ["routing", "blocks.*.attn.hook_pattern", "blocks.*.hook_resid_post"], maxNewTokens: 6 });
});

async function checkPng(v: View, b: MimeBundle): Promise<void> {
  const png = Buffer.from(b.data["image/png"] as string, "base64");
  const meta = await sharp(png).metadata();
  const stated = (b.metadata as Record<string, { width: number; height: number }>)["image/png"];
  expect(meta.format).toBe("png");
  expect([meta.width, meta.height]).toEqual([stated.width, stated.height]);
  const st = await sharp(png).stats();
  expect(st.channels.some((c) => c.max - c.min > 50), `${v.kind}: PNG is not uniform`).toBe(true);
}

function checkHtml(v: View, html: string): void {
  expect(html).toContain(`data-moescope-kind="${v.kind}"`);
  const own = html.replace(/<script type="text\/javascript">\/\* plotly\.js[\s\S]*?<\/script>/, "");
  expect(own).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
  expect(own).not.toMatch(/cdn\.|unpkg|jsdelivr|cdnjs/i);
  if (v.figure) {
    expect(own).toContain('<img src="data:image/png;base64,');
    expect(own).toContain("window.__moescopeQ");
  }
}

describe("view bundles", () => {
  it("every view emits plotly JSON (where it has a chart), HTML, a valid PNG and text", async () => {
    const ablated = await model.run(PROMPT, { capture: "routing", interventions: { ablateExperts: [{ layer: 1, expert: 1 }] } });
    const views: [string, () => Promise<View>][] = [
      ["routing-grid", () => V.routingGrid(trace)],
      ["router-logits", () => V.routerLogits(trace, { layer: 1 })],
      ["expert-text", () => V.expertText(trace, { layer: 2 })],
      ["expert-load", () => V.expertLoad(trace)],
      ["coactivation", () => V.coactivation(trace)],
      ["attention-heads", () => V.attentionHeads(trace, { layer: 3 })],
      ["attention-head", () => V.attentionHead(trace, { layer: 0, head: 2 })],
      ["attention-text", () => V.attentionText(trace, { layer: 1, query: 10 })],
      ["residual-norms", () => V.residualNorms(trace)],
      ["logit-lens", () => V.logitLens(model, trace, { maxPositions: 6 })],
      ["compare", () => V.compareTraces(trace, ablated, { model })],
      ["linked", () => V.linkedView(trace, { layer: 2 })],
    ];
    resetPlotlyShipped();
    let withLibrary = 0;
    for (const [kind, make] of views) {
      const v = await make();
      expect(v.kind).toBe(kind);
      const b = v[MIMEBUNDLE]();
      const html = b.data["text/html"] as string;
      if (html.includes("inlined once by moescope")) withLibrary++;
      checkHtml(v, html);
      await checkPng(v, b);
      expect(typeof b.data["text/plain"]).toBe("string");
      const hasPlotlyMime = "application/vnd.plotly.v1+json" in b.data;
      expect(hasPlotlyMime, kind).toBe(!!v.figure && kind !== "linked");
      if (hasPlotlyMime) {
        const f = b.data["application/vnd.plotly.v1+json"] as { data: unknown[]; layout: { width: number } };
        expect(f.data.length).toBeGreaterThan(0);
        expect(f.layout.width).toBeGreaterThan(0);
      }
    }
    expect(withLibrary).toBe(1);
  });

  it("plotlyInit ships the library explicitly and the display protocol sees views", async () => {
    const b = toMimeBundle(V.plotlyInit());
    expect((b.data["text/html"] as string).length).toBeGreaterThan(1_000_000);
    const v = await V.expertLoad(trace);
    expect(Object.keys(toMimeBundle(v).data)).toEqual(expect.arrayContaining(["text/html", "image/png", "text/plain", "application/vnd.plotly.v1+json"]));
  });

  it("routing grid colours each cell by the trace's expert and gate", async () => {
    const v = await V.routingGrid(trace);
    const z = (v.figure!.data[0] as { z: number[][] }).z;
    const layers = trace.moeLayers;
    const r = trace.routing(layers[1]);
    expect(Math.floor(z[5][1])).toBe(r.experts[5 * r.k]);
    expect(z[5][1] - Math.floor(z[5][1])).toBeCloseTo(0.001 + 0.998 * r.gates[5 * r.k], 5);
  });
});

describe("logit lens", () => {
  it("is exact at the last layer: equals the run's own next-token distribution", async () => {
    const lens = await V.computeLogitLens(model, trace, { topK: 5, maxPositions: 4 });
    const last = lens.top[lens.top.length - 1][lens.positions.length - 1];
    const logits = trace.logitsAt(trace.nPrompt - 1);
    const m = Math.max(...logits);
    const z = logits.reduce((s, x) => s + Math.exp(x - m), 0);
    const ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 5);
    expect(last.ids).toEqual(ids);
    last.probs.forEach((p, i) => expect(p).toBeCloseTo(Math.exp(logits[ids[i]] - m) / z, 5));
    // Earlier layers differ from the final one (the patch took effect).
    expect(lens.top[0][lens.positions.length - 1].probs[0]).not.toBeCloseTo(last.probs[0], 5);
  });

  it("computes residuals itself when the trace lacks them", async () => {
    const bare = await model.run(PROMPT, { capture: "routing" });
    const a = await V.computeLogitLens(model, bare, { maxPositions: 3 });
    const b = await V.computeLogitLens(model, trace, { maxPositions: 3 });
    expect(a.top.map((r) => r.map((c) => c.ids[0]))).toEqual(b.top.map((r) => r.map((c) => c.ids[0])));
  });
});

describe("comparison", () => {
  it("finds no change between identical runs and some after an ablation", async () => {
    const same = await model.run(PROMPT, { capture: "routing" });
    const v0 = await V.compareTraces(trace, same);
    expect(v0.spec.text).toMatch(/KL\(A‖B\) = 0\.0000 nats/);
    expect(v0.spec.text).toMatch(/routing changed for 0 of/);
    const ablated = await model.run(PROMPT, { capture: "routing", interventions: { ablateExperts: [{ layer: 0, expert: trace.routing(0).experts[3] }] } });
    const v1 = await V.compareTraces(trace, ablated);
    expect(v1.spec.text).not.toMatch(/routing changed for 0 of/);
  });
});

describe("attention", () => {
  it("labels NoPE/global layers and draws chunk boundaries when the text is longer than a chunk", async () => {
    const heads = await V.attentionHeads(trace, { layer: 3 });
    expect(heads.figure!.layout.title!.text).toContain("NoPE · global");
    // The same run seen as if the chunk were 8 tokens (the fixture's is 8192): boundaries at 8, 16, ...
    const chunked = new Trace({ ...trace.info, attnChunk: 8 }, trace.tokens, trace.nPrompt, trace.generated, trace.logits, trace.logitsRows,
      [...trace.tensors.values()].map((t) => ({ ...t, positions: Int32Array.from(t.positions) })) as never, trace.record, trace.tokenTexts, trace.timing, trace.stopReason);
    const v = await V.attentionHeads(chunked, { layer: 0 });
    expect(v.figure!.layout.title!.text).toContain("chunked attention (chunk 8)");
    expect(v.figure!.layout.shapes!.length).toBeGreaterThan(0);
    expect(v.notes.join(" ")).toMatch(/chunk boundaries every 8 tokens/);
  });
});

describe("live generation", () => {
  it("shows tokens with their experts in one display, updated in place", async () => {
    const events: { id: string; update: boolean; data: Record<string, unknown> }[] = [];
    setFrontend({
      display: (b, o) => events.push({ id: o.displayId, update: o.update, data: b.data }),
      clearOutput: () => undefined, commOpen: () => undefined, commMsg: () => undefined, commClose: () => undefined,
    });
    try {
      for (const mode of ["step", "stream"] as const) {
        events.length = 0;
        const r = await V.liveGeneration(model, "Once upon a time", { maxNewTokens: 5, mode, minIntervalMs: 0 });
        expect(events[0].update).toBe(false);
        expect(events.slice(1).every((e) => e.update && e.id === events[0].id)).toBe(true);
        expect(events.length).toBeGreaterThan(2);
        const last = events[events.length - 1];
        expect(Object.keys(last.data)).toEqual(expect.arrayContaining(["text/html", "image/png", "text/plain"]));
        expect(String(last.data["text/plain"])).toMatch(/\[e\d+\]/);
        // Same tokens as a plain greedy run.
        const plain = await model.run("Once upon a time", { maxNewTokens: 5 });
        expect(r.text).toBe(model.decode(plain.generated));
      }
    } finally {
      setFrontend(undefined);
    }
  });
});

/**
 * A 10,000-token trace with the shapes and value ranges of a real one, built from the fixture's
 * config (a real 10k-token prefill takes a minute on the shared test cores, and the views' bounding
 * does not depend on where the numbers came from). Attention: one head, the last 1,500 queries over
 * all keys, causal rows that sum to 1.
 */
function longTrace(n: number, shape: { nLayer?: number; nHead?: number; nExpert?: number; queries?: number } = {}): Trace {
  const L0 = shape.nLayer ?? trace.info.nLayer;
  const info = { ...trace.info, nLayer: L0, nHead: shape.nHead ?? trace.info.nHead, nExpert: shape.nExpert ?? trace.info.nExpert,
    layers: Array.from({ length: L0 }, (_, l) => ({ ...trace.info.layers[l % trace.info.layers.length], isMoe: true })) };
  const E = info.nExpert, D = info.nEmbd, Hs = shape.nHead ?? 1, Q = shape.queries ?? 1500;
  const all = Array.from({ length: n }, (_, i) => i);
  const captured: { name: string; dtype: "f32" | "i32"; shape: number[]; data: Float32Array | Int32Array; positions: Int32Array }[] = [];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let l = 0; l < info.nLayer; l++) {
    const logits = Float32Array.from({ length: n * E }, () => rnd() * 8 - 4);
    const idx = new Int32Array(n), gates = new Float32Array(n);
    for (let t = 0; t < n; t++) {
      let best = 0;
      for (let e = 1; e < E; e++) if (logits[t * E + e] > logits[t * E + best]) best = e;
      idx[t] = best;
      gates[t] = 1 / (1 + Math.exp(-logits[t * E + best]));
    }
    captured.push({ name: `blocks.${l}.mlp.hook_router_logits`, dtype: "f32", shape: [n, E], data: logits, positions: Int32Array.from(all) });
    captured.push({ name: `blocks.${l}.mlp.hook_expert_indices`, dtype: "i32", shape: [n, 1], data: idx, positions: Int32Array.from(all) });
    captured.push({ name: `blocks.${l}.mlp.hook_expert_weights`, dtype: "f32", shape: [n, 1], data: gates, positions: Int32Array.from(all) });
    captured.push({ name: `blocks.${l}.hook_resid_post`, dtype: "f32", shape: [n, D], data: Float32Array.from({ length: n * D }, () => (rnd() - 0.5) * (l + 1)), positions: Int32Array.from(all) });
  }
  const q0 = n - Q;
  for (const l of [0, 3]) {
    const pat = new Float32Array(Hs * Q * n);
    for (let h = 0; h < Hs; h++)
      for (let r = 0; r < Q; r++) {
        const q = q0 + r, o = (h * Q + r) * n;
        // Half on the first token (a sink), the rest on the previous 8.
        pat[o] = 0.5;
        for (let k = q - 7; k <= q; k++) pat[o + k] += 0.5 / 8;
      }
    captured.push({ name: `blocks.${l}.attn.hook_pattern`, dtype: "f32", shape: [Hs, Q, n], data: pat, positions: Int32Array.from({ length: Q }, (_, i) => q0 + i) });
  }
  const tokens = Int32Array.from(all, (i) => (i === 0 ? info.bosId : 1 + ((i * 7919) % 600)));
  const texts = model.tokenStrings(tokens);
  return new Trace(info, tokens, n, new Int32Array(0), new Float32Array(info.nVocab), 1, captured as never,
    { ...trace.record, capture: { ...trace.record.capture, heads: shape.nHead ? [] : [0] } }, texts, { prefillSeconds: 0, decodeSeconds: 0 }, "length");
}

describe("bounded output on a 10,000-token trace", () => {
  it("every view stays small and says what it left out", async () => {
    const long = longTrace(10_000);
    resetPlotlyShipped();
    V.plotlyInit()[MIMEBUNDLE](); // ship the library first so sizes below are the views' own
    const t1 = Date.now();
    const sizes: Record<string, number> = {};
    const views: [string, () => Promise<View>][] = [
      ["routing-grid", () => V.routingGrid(long)],
      ["router-logits", () => V.routerLogits(long)],
      ["expert-text", () => V.expertText(long)],
      ["expert-load", () => V.expertLoad(long)],
      ["coactivation", () => V.coactivation(long)],
      ["residual-norms", () => V.residualNorms(long)],
      ["attention-heads", () => V.attentionHeads(long, { layer: 0 })],
      ["attention-head", () => V.attentionHead(long, { layer: 3, head: 0 })],
      ["attention-text", () => V.attentionText(long, { layer: 3, head: 0 })],
      ["linked", () => V.linkedView(long, { layer: 0 })],
      ["compare", () => V.compareTraces(long, long)],
    ];
    for (const [kind, make] of views) {
      const v = await make();
      const b = v[MIMEBUNDLE]();
      sizes[kind] = JSON.stringify(b).length;
      expect(sizes[kind], kind).toBeLessThan(1_000_000);
      if (kind !== "expert-load" && kind !== "coactivation") expect(v.notes.length, `${kind} says what it left out`).toBeGreaterThan(0);
      await checkPng(v, b);
    }
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    console.log(`[10k tokens] views ${Date.now() - t1} ms; bundle bytes`, sizes, "total", total);
    expect(total).toBeLessThan(5_000_000);
  }, 120_000);
});

describe("many experts (tiny-maverick: 128 experts, MoE in odd layers)", () => {
  it("routing views skip dense layers, link consecutive MoE layers and stay bounded", async () => {
    const mav = await Model.load(fixture("tiny-maverick", "model.gguf"));
    const t = await mav.run(PROMPT.repeat(12), { capture: "routing" });
    expect(t.moeLayers).toEqual([1, 3]);
    const grid = await V.routingGrid(t);
    expect(grid.spec.text).toMatch(/2 MoE layers, 128 experts/);
    const co = await V.coactivation(t);
    expect(co.spec.text).toMatch(/layer 1 → 3/);
    const lg = await V.routerLogits(t);
    const size = JSON.stringify(lg[MIMEBUNDLE]()).length;
    expect(size).toBeLessThan(1_000_000);
    expect(lg.notes.join(" ")).toMatch(/Showing \d+ of \d+ tokens/);
    const text = await V.expertText(t, { layer: 3 });
    expect(text[MIMEBUNDLE]().data["text/html"]).toMatch(/… 112 more experts/);
  });
});

describe("bounded output on a Scout-shaped trace (48 layers, 40 heads, 16 experts)", () => {
  it("per-cell charts shrink their token rows as layers grow", async () => {
    const big = longTrace(2000, { nLayer: 48, nHead: 40, nExpert: 16, queries: 100 });
    V.plotlyInit()[MIMEBUNDLE]();
    for (const make of [() => V.routingGrid(big), () => V.residualNorms(big), () => V.linkedView(big), () => V.compareTraces(big, big), () => V.attentionHeads(big), () => V.expertText(big)]) {
      const v = await make();
      const size = JSON.stringify(v[MIMEBUNDLE]()).length;
      expect(size, v.kind).toBeLessThan(1_200_000);
    }
  }, 120_000);
});
