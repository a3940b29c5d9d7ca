/**
 * TinyScout's two measured claims, recomputed with moescope's engine on the held-out sets that
 * tools/train-demo/analyze.py wrote (models/tinyscout/heldout), and checked against the numbers the
 * training code reported (models/tinyscout/claims.json):
 *   (1) mutual information (bits) between token category and chosen expert, per layer, and between what
 *       lies under an image token (background, or the colour and shape of the object) and its expert;
 *   (2) pointing-game accuracy of the grounding map (attention from the object word to the image tokens),
 *       mean over all layers and heads, and the (layer, head) picked on the validation split.
 * The engine's routing and attention match the training code's to float32 rounding (tinyscout.test.ts),
 * so the numbers agree to within a flipped argmax or two (tolerance: 0.002 bits, 1 % accuracy).
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it, beforeAll } from "vitest";
import { Model } from "../../engine/src/model";
import { visionTraceInputs } from "../../engine/src/images/trace-inputs";
import { sameInts } from "../helpers";

const DIR = process.env.TINYSCOUT_DIR ?? path.join(__dirname, "..", "..", "models", "tinyscout");
const HELD = path.join(DIR, "heldout");
interface Sample {
  text: string; tokens: number[]; cats: number[]; refs: [number, number][]; boxes: number[][]; image: string | null;
  patch_labels: number[] | null;
}
const have = fs.existsSync(path.join(HELD, "heldout.json")) && fs.existsSync(path.join(DIR, "claims.json"));
const sets: Record<string, Sample[]> = have ? JSON.parse(fs.readFileSync(path.join(HELD, "heldout.json"), "utf8")) : {};
const claims = have ? JSON.parse(fs.readFileSync(path.join(DIR, "claims.json"), "utf8")) : {};

function miBits(x: number[], y: number[]): number {
  const nx = Math.max(...x) + 1, ny = Math.max(...y) + 1, n = x.length;
  const j = new Float64Array(nx * ny), px = new Float64Array(nx), py = new Float64Array(ny);
  for (let i = 0; i < n; i++) { j[x[i] * ny + y[i]] += 1 / n; px[x[i]] += 1 / n; py[y[i]] += 1 / n; }
  let mi = 0;
  for (let a = 0; a < nx; a++) for (let b = 0; b < ny; b++) { const p = j[a * ny + b]; if (p > 0) mi += p * Math.log2(p / (px[a] * py[b])); }
  return mi;
}

const hit = (token: number, box: number[]) => {
  const cx = ((token % 6) + 0.5) * 28, cy = (Math.floor(token / 6) + 0.5) * 28;
  return box[0] <= cx && cx < box[2] && box[1] <= cy && cy < box[3];
};

describe.skipIf(!have)("TinyScout claims, recomputed with the engine", () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(DIR);
  });

  async function run(s: Sample, names: string[]) {
    const prompt = model.tokenize(s.text, { bos: false });
    if (!s.image) {
      sameInts("tokens", prompt, s.tokens);
      return model.run(prompt, { capture: { names } });
    }
    const vi = await visionTraceInputs(model, { prompt, images: [path.join(HELD, s.image)], capture: "none" });
    sameInts("tokens", vi.tokens, s.tokens);
    return model.run(vi.tokens, { capture: { names }, embedOverride: vi.embedOverride });
  }

  it("expert specialisation: MI(category; expert) per layer", async () => {
    const L = model.config.nLayer;
    const cats: number[] = [], experts: number[][] = Array.from({ length: L }, () => []);
    const content: number[] = [], imgExperts: number[][] = Array.from({ length: L }, () => []);
    for (const s of sets.mi) {
      const tr = await run(s, ["routing"]);
      const keep = s.cats.map((c, i) => (c !== 5 ? i : -1)).filter((i) => i >= 0);
      const patches = s.cats.map((c, i) => (c === 4 ? i : -1)).filter((i) => i >= 0);
      keep.forEach((i) => cats.push(s.cats[i]));
      if (patches.length) content.push(...s.patch_labels!);
      for (let l = 0; l < L; l++) {
        const r = tr.routing(l);
        keep.forEach((i) => experts[l].push(r.experts[i * r.k]));
        patches.forEach((i) => imgExperts[l].push(r.experts[i * r.k]));
      }
    }
    const layers = claims.specialisation.layers as { mi_bits: number; image_content_mi_bits: number }[];
    const ours = experts.map((e) => miBits(cats, e));
    const oursImg = imgExperts.map((e) => miBits(content, e));
    console.log(`[tinyscout claims, engine] MI bits per layer: ${ours.map((m) => m.toFixed(4)).join(", ")} (python: ${layers.map((l) => l.mi_bits).join(", ")}); ` +
      `image content: ${oursImg.map((m) => m.toFixed(4)).join(", ")} (python: ${layers.map((l) => l.image_content_mi_bits).join(", ")})`);
    ours.forEach((m, l) => expect(Math.abs(m - layers[l].mi_bits)).toBeLessThan(0.002));
    oursImg.forEach((m, l) => expect(Math.abs(m - layers[l].image_content_mi_bits)).toBeLessThan(0.002));
  });

  it("grounding: pointing game", async () => {
    const L = model.config.nLayer, H = model.config.nHead;
    const maps = async (samples: Sample[]) => {
      const rows: { m: Float64Array[][]; box: number[] }[] = [];
      for (const s of samples) {
        const tr = await run(s, ["blocks.*.attn.hook_pattern"]);
        const patch = s.cats.map((c, i) => (c === 4 ? i : -1)).filter((i) => i >= 0);
        for (const [p, k] of s.refs) {
          const m = Array.from({ length: L }, (_, l) => {
            const t = tr.get(`blocks.${l}.attn.hook_pattern`);
            const T = t.positions.length, S = t.shape[2];
            return Array.from({ length: H }, (_, h) => Float64Array.from(patch, (q) => t.data[(h * T + t.positions.indexOf(p)) * S + q]));
          });
          rows.push({ m, box: s.boxes[k] });
        }
      }
      return rows;
    };
    const argmax = (a: ArrayLike<number>) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };
    const acc = (rows: Awaited<ReturnType<typeof maps>>, f: (m: Float64Array[][]) => ArrayLike<number>) =>
      rows.filter((r) => hit(argmax(f(r.m)), r.box)).length / rows.length;
    const mean = (m: Float64Array[][]) => { const o = new Float64Array(36); m.flat().forEach((a) => a.forEach((v, i) => (o[i] += v))); return o; };
    const val = await maps(sets.point_val), test = await maps(sets.point_test);
    const pg = claims.pointing_game;
    const meanAcc = acc(test, mean);
    const best = pg.best_head_on_val;
    const headAcc = acc(test, (m) => m[best.layer][best.head]);
    console.log(`[tinyscout claims, engine] pointing game on ${test.length} refs: mean map ${meanAcc.toFixed(4)} (python ${pg.accuracy_mean_all_heads}), ` +
      `layer ${best.layer} head ${best.head} ${headAcc.toFixed(4)} (python ${best.test_accuracy}); val refs ${val.length}`);
    expect(test.length).toBe(pg.test_refs);
    expect(Math.abs(meanAcc - pg.accuracy_mean_all_heads)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(headAcc - best.test_accuracy)).toBeLessThanOrEqual(0.01);
    const layerMean = (l: number) => (m: Float64Array[][]) => mean([m[l]]);
    for (let l = 0; l < L; l++) expect(Math.abs(acc(test, layerMean(l)) - pg.per_layer_mean_heads_test[l])).toBeLessThanOrEqual(0.01);
  });
});
