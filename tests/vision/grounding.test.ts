/**
 * Grounding on tiny-vision: token geometry (tiles, 2×2 blocks, rectangles in the original image with
 * resize and padding undone), attention-to-image maps (shares sum to one, values are the captured
 * probabilities), attention rollout against a brute-force matrix product, occlusion maps (batched =
 * unbatched, tile masking = splicing a grey tile's features), routing by modality, and rendering.
 */
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { imageTokenGeometry } from "../../engine/src/images/geometry";
import { attentionRollout, attentionToImage, occlusionMap } from "../../engine/src/images/grounding";
import { routingByModality } from "../../engine/src/images/modality-routing";
import { planImage } from "../../engine/src/images/plan";
import { decodeImage } from "../../engine/src/images/decode";
import { groundingHtml, heatmapOverlay, tileView } from "../../engine/src/images/render";
import { groundingView } from "../../engine/src/images/view";
import { MIMEBUNDLE } from "../../engine/src/display";
import { visionTraceInputs, VisionTraceInputs } from "../../engine/src/images/trace-inputs";
import { Model } from "../../engine/src/model";
import { runWithImages } from "../../engine/src/images/run";
import { Trace } from "../../engine/src/trace";
import { fixture, prompt } from "../helpers";

describe("image token geometry", () => {
  it("a 1×2 grid with thumbnail (336×672)", () => {
    const geo = imageTokenGeometry(planImage(336, 672));
    expect(geo.length).toBe(3 * 144);
    expect(geo[143]).toMatchObject({ tile: 0, blockRow: 11, blockCol: 11, imageRect: { x0: 308, y0: 308, x1: 336, y1: 336 }, padding: 0 });
    expect(geo[143].patches).toEqual([[22, 22], [22, 23], [23, 22], [23, 23]]);
    expect(geo[144]).toMatchObject({ tile: 1, tileRow: 0, tileCol: 1, imageRect: { x0: 336, y0: 0, x1: 364, y1: 28 } });
    expect(geo[288]).toMatchObject({ tile: 2, thumbnail: true, imageRect: { x0: 0, y0: 0, x1: 56, y1: 28 } });
  });
  it("resize and bottom padding undone (200×300 -> 224×336 in a 336×336 tile)", () => {
    const geo = imageTokenGeometry(planImage(200, 300));
    expect(geo.length).toBe(144);
    // Block row 7 covers canvas rows 196..224 = the last resized rows = original rows 175..200.
    expect(geo[7 * 12].imageRect!.y0).toBeCloseTo(175, 6);
    expect(geo[7 * 12].imageRect!.y1).toBeCloseTo(200, 6);
    expect(geo[7 * 12 + 11].imageRect!.x1).toBeCloseTo(300, 6);
    // Rows 8..11 saw only padding.
    for (let j = 8 * 12; j < 144; j++) expect(geo[j].imageRect).toBeNull();
    expect(geo[8 * 12].padding).toBe(1);
  });
});

describe("grounding maps on tiny-vision (hf)", () => {
  let model: Model;
  let inp: VisionTraceInputs;
  let tr: Trace;
  let inp2: VisionTraceInputs;
  beforeAll(async () => {
    model = await Model.load(fixture("tiny-vision", "hf"));
    inp = await visionTraceInputs(model, { prompt: prompt("p_image"), images: fixture("tiny-vision", "img336x336.png"), capture: "none" });
    tr = await model.run(inp.tokens, { embedOverride: inp.embedOverride, logitsLast: 1, capture: { names: ["blocks.*.attn.hook_pattern", "routing"] } });
    inp2 = await visionTraceInputs(model, { prompt: prompt("p_image"), images: fixture("tiny-vision", "img336x672.png"), capture: "none" });
  });

  it("attention to the image: the captured probabilities, shares summing to one", () => {
    const q = inp.tokens.length - 1;
    const a = attentionToImage(tr, q, inp.expanded.patchPositions);
    const L = model.config.nLayer, H = model.config.nHead, n = 144;
    expect(a.probs.length).toBe(L * H * n);
    const p = tr.pattern(2, 1);
    const r = p.positions.indexOf(q);
    expect(a.probs[(2 * H + 1) * n + 5]).toBe(p.data[r * p.keys + inp.expanded.patchPositions[5]]);
    for (let lh = 0; lh < L * H; lh++) {
      const s = a.shares.subarray(lh * n, (lh + 1) * n).reduce((x, y) => x + y, 0);
      if (a.imageMass[lh] > 0) expect(s).toBeCloseTo(1, 5);
      expect(a.imageMass[lh]).toBeLessThanOrEqual(1 + 1e-6);
    }
    expect(a.aggregate.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
  });

  it("attention rollout equals the brute-force product of the layer matrices", () => {
    const q = inp.tokens.length - 1, T = q + 1, L = model.config.nLayer, H = model.config.nHead;
    let row = new Float64Array(T);
    row[q] = 1;
    for (let l = L - 1; l >= 0; l--) {
      const next = new Float64Array(T);
      for (let i = 0; i < T; i++) {
        const A = new Float64Array(T);
        for (let h = 0; h < H; h++) {
          const p = tr.pattern(l, h);
          const r = p.positions.indexOf(i);
          for (let k = 0; k <= i; k++) A[k] += (0.5 * p.data[r * p.keys + k]) / H;
        }
        A[i] += 0.5;
        const s = A.reduce((x, y) => x + y, 0);
        for (let k = 0; k < T; k++) next[k] += (row[i] * A[k]) / s;
      }
      row = next;
    }
    const { map, row: ours } = attentionRollout(tr, q, inp.expanded.patchPositions);
    expect(ours.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 9);
    for (let k = 0; k < 144; k++) expect(map[k]).toBeCloseTo(row[inp.expanded.patchPositions[k]], 6);
  });

  it("occlusion by tile: batched = unbatched, and masking a tile = splicing a grey tile's features", async () => {
    const q = inp2.tokens.length - 1;
    const a = await occlusionMap(model, inp2, q, undefined, { unit: "tile", batch: 3 });
    const b = await occlusionMap(model, inp2, q, a.target.token, { unit: "tile", batch: 1 });
    expect(Array.from(a.delta)).toEqual(Array.from(b.delta));
    expect(a.delta.every(Number.isFinite)).toBe(true);
    // By hand for tile 1: encode a grey tile, splice its rows, compare log-probabilities.
    const grey = await inp2.vision.encode(new Float32Array(3 * 336 * 336), 1);
    const rows = Float32Array.from(inp2.embedOverride.rows);
    rows.set(grey.embeds, 144 * 64);
    const run = async (r: Float32Array) => (await model.run(inp2.tokens, { logitsLast: 1, embedOverride: { positions: inp2.embedOverride.positions, rows: r } })).logits;
    const lsm = (l: Float32Array, t: number) => { const m = Math.max(...l); return l[t] - m - Math.log(l.reduce((s, v) => s + Math.exp(v - m), 0)); };
    const expected = lsm(await run(inp2.embedOverride.rows), a.target.token) - lsm(await run(rows), a.target.token);
    expect(a.delta[1]).toBeCloseTo(expected, 5);
  });

  it("occlusion by 2×2-patch block: one value per image token, batch size does not change it", async () => {
    const q = inp.tokens.length - 1;
    const blocks = [0, 5, 77, 100, 143];
    const a = await occlusionMap(model, inp, q, undefined, { unit: "block", batch: 2, blocks });
    const b = await occlusionMap(model, inp, q, a.target.token, { unit: "block", batch: 5, blocks });
    expect(a.delta.length).toBe(144);
    expect(Array.from(a.delta)).toEqual(Array.from(b.delta));
    for (let k = 0; k < 144; k++) expect(Number.isFinite(a.delta[k]), `block ${k}`).toBe(blocks.includes(k));
    expect(blocks.some((k) => a.delta[k] !== 0)).toBe(true);
  });

  it("routing by modality: every routed slot counted once, as image or text", () => {
    const r = routingByModality(tr, inp.expanded.patchPositions);
    expect(r.length).toBe(tr.moeLayers.length);
    for (const l of r) {
      expect(l.image.reduce((x, y) => x + y, 0)).toBe(144 * model.config.nExpertUsed);
      expect(l.text.reduce((x, y) => x + y, 0)).toBe((inp.tokens.length - 144) * model.config.nExpertUsed);
      expect(l.divergence).toBeGreaterThanOrEqual(0);
      expect(l.divergence).toBeLessThanOrEqual(1);
    }
  });

  it("renders an overlay PNG, a tile view with separators and an interactive HTML view", async () => {
    const img = await decodeImage(fixture("tiny-vision", "img336x672.png"));
    const values = Float32Array.from({ length: 432 }, (_, i) => i % 144);
    const png = await heatmapOverlay(img, inp2.plans[0], values);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 672, 336]);
    const tiles = await tileView(inp2.pixelValues, inp2.plans[0], values);
    const tm = await sharp(tiles).metadata();
    expect([tm.width, tm.height]).toEqual([336 * 3 + 8 + 24, 336]);
    const html = groundingHtml(["A", " cat"], new Map([[1, png]]));
    expect(html).toContain("data:image/png;base64,");
    expect(html).toContain('data-i="1"');
  });

  it("interactive grounding view (widgets style): hover a word -> its map", async () => {
    const img = await decodeImage(fixture("tiny-vision", "img336x336.png"));
    const q = inp.tokens.length - 1;
    const maps = new Map<number, Float32Array>();
    for (const p of [q - 2, q - 1, q]) maps.set(p, attentionToImage(tr, p, inp.expanded.patchPositions).aggregate);
    const v = await groundingView(img, inp.plans[0], model.tokenStrings(inp.tokens), maps);
    expect(v.kind).toBe("image-grounding");
    const b = v[MIMEBUNDLE]();
    const html = b.data["text/html"] as string;
    expect(html).toContain(`data-i="${q}"`);
    expect(html.match(/data:image\/png;base64,/g)!.length).toBeGreaterThanOrEqual(4);
    expect(typeof b.data["image/png"]).toBe("string");
    expect(String(b.data["text/plain"])).toMatch(/3 mapped words over a 336×336 image/);
  });

  it("runWithImages: chat text + image in one call, same logits as the explicit path", async () => {
    const { trace, inputs } = await runWithImages(model, prompt("p_image"), fixture("tiny-vision", "img336x336.png"), { logitsLast: 1 });
    expect(Array.from(inputs.tokens)).toEqual(Array.from(inp.tokens));
    const ref = await model.run(inp.tokens, { logitsLast: 1, embedOverride: inp.embedOverride });
    expect(Array.from(trace.logits)).toEqual(Array.from(ref.logits));
  });

  it("two images in one prompt: blocks in prompt order, each image's features where its <|patch|> tokens are", async () => {
    const two = await visionTraceInputs(model, {
      prompt: "<|header_start|>user<|header_end|>\n\n<|image|>and<|image|>?<|eot|>",
      images: [fixture("tiny-vision", "img336x672.png"), fixture("tiny-vision", "img336x336.png")], capture: "none",
    });
    expect(two.expanded.images.map((i) => i.patchPositions.length)).toEqual([432, 144]);
    expect(two.expanded.images[1].start).toBeGreaterThan(two.expanded.images[0].end);
    const n = two.embedOverride.rows.length / 64;
    expect(n).toBe(576);
    // The second image's rows are exactly img1's features.
    expect(Array.from(two.embedOverride.rows.subarray(432 * 64))).toEqual(Array.from(inp.embedOverride.rows));
    const tr2 = await model.run(two.tokens, { embedOverride: two.embedOverride, logitsLast: 1 });
    expect(tr2.logits.every(Number.isFinite)).toBe(true);
  });
});
