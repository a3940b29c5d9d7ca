/**
 * Image grounding: where in the picture the model looked when it produced a token. Three maps from a
 * text position to the image's feature tokens (order: tiles row-major, thumbnail last — the order of
 * `imageTokenGeometry`, which places each on the original image):
 *
 * 1. Attention (`attentionToImage`). For query position q, layer l, head h, the softmax probability
 *    p_lh(k) that q gives to each image token k. Per layer/head we report the raw probabilities and
 *    their share of the image's attention, p_lh(k) / Σ_k' p_lh(k'). The aggregate is the mean of the raw
 *    probabilities over the chosen layers and heads, renormalised over the image's tokens: a head that
 *    barely looks at the image contributes little, one that attends to it strongly dominates (a plain
 *    mean of shares would give both equal votes). `imageMass[l][h]` = Σ_k p_lh(k) says how much each
 *    head looks at the image at all. Needs `blocks.*.attn.hook_pattern` captured at q.
 * 2. Attention rollout (`attentionRollout`, Abnar & Zuidema 2020): per layer A_l = ½·mean_h P_l + ½·I
 *    (the residual path), rows renormalised; the rollout row of q is e_q · A_{L-1} ⋯ A_0, read at the
 *    image tokens. Needs the patterns of every row ≤ q (capture positions from 0).
 * 3. Occlusion (`occlusionMap`): mask one tile, or one 2×2-patch block (28×28 px) of a tile, with
 *    mid-grey (pixel value 0 after normalisation), re-encode, re-run the text model up to q, and report
 *    Δ = log p(target | original) − log p(target | masked) per unit: positive = the region supported the
 *    token. Masked tiles are encoded in batches (one native call each); tiles are independent in the
 *    ViT, so only the masked tile is re-encoded and the other rows are reused.
 */
import { MoescopeError } from "../errors";
import type { Model } from "../model";
import type { Trace } from "../trace";
import type { VisionTraceInputs } from "./trace-inputs";

export interface ImageAttention {
  /** Image feature tokens, in feature order. */
  positions: Int32Array;
  layers: number[];
  heads: number;
  /** [layers.length, heads, n]: raw probabilities q → image token. */
  probs: Float32Array;
  /** [layers.length, heads, n]: share of the head's image attention. */
  shares: Float32Array;
  /** [layers.length, heads]: total probability on the image. */
  imageMass: Float32Array;
  /** [n], sums to 1: the aggregate described above. */
  aggregate: Float32Array;
}

function patternRow(trace: Trace, layer: number, q: number): { H: number; S: number; rows: number; r: number; data: Float32Array } {
  const name = `blocks.${layer}.attn.hook_pattern`;
  if (!trace.has(name)) throw new MoescopeError(`grounding needs ${name} in the trace: capture "blocks.*.attn.hook_pattern"`, "CAPTURE_MISSING");
  const t = trace.get(name);
  const [H, rows, S] = t.shape;
  const r = t.positions.indexOf(q);
  if (r < 0) throw new MoescopeError(`${name} was not captured at position ${q}`, "CAPTURE_MISSING");
  return { H, S, rows, r, data: t.data as Float32Array };
}

export function attentionToImage(trace: Trace, query: number, imagePositions: ArrayLike<number>, opts: { layers?: number[]; heads?: number[] } = {}): ImageAttention {
  const positions = Int32Array.from(imagePositions);
  const n = positions.length;
  const layers = opts.layers ?? Array.from({ length: trace.info.nLayer }, (_, l) => l);
  const first = patternRow(trace, layers[0], query);
  const H = first.H;
  const heads = opts.heads ?? Array.from({ length: H }, (_, h) => h);
  const probs = new Float32Array(layers.length * H * n), shares = new Float32Array(layers.length * H * n), imageMass = new Float32Array(layers.length * H);
  const agg = new Float64Array(n);
  layers.forEach((l, li) => {
    const { S, rows, r, data } = patternRow(trace, l, query);
    for (let h = 0; h < H; h++) {
      const base = (h * rows + r) * S;
      let mass = 0;
      for (let k = 0; k < n; k++) {
        const p = positions[k] < S ? data[base + positions[k]] : 0;
        probs[(li * H + h) * n + k] = p;
        mass += p;
        if (heads.includes(h)) agg[k] += p;
      }
      imageMass[li * H + h] = mass;
      for (let k = 0; k < n; k++) shares[(li * H + h) * n + k] = mass > 0 ? probs[(li * H + h) * n + k] / mass : 0;
    }
  });
  const total = agg.reduce((a, b) => a + b, 0);
  const aggregate = Float32Array.from(agg, (v) => (total > 0 ? v / total : 0));
  return { positions, layers, heads: H, probs, shares, imageMass, aggregate };
}

/** Rollout row of `query` at the image tokens (and the full row over positions 0..query). */
export function attentionRollout(trace: Trace, query: number, imagePositions: ArrayLike<number>, opts: { layers?: number[]; residualWeight?: number } = {}): { map: Float32Array; row: Float64Array } {
  const L = trace.info.nLayer;
  const layers = opts.layers ?? Array.from({ length: L }, (_, l) => l);
  const a = opts.residualWeight ?? 0.5;
  let row = new Float64Array(query + 1);
  row[query] = 1;
  for (const l of [...layers].sort((x, y) => y - x)) {
    const name = `blocks.${l}.attn.hook_pattern`;
    if (!trace.has(name)) throw new MoescopeError(`rollout needs ${name} for every row up to ${query}`, "CAPTURE_MISSING");
    const t = trace.get(name);
    const [H, rows, S] = t.shape;
    const data = t.data as Float32Array;
    const next = new Float64Array(query + 1);
    for (let i = 0; i <= query; i++) {
      if (row[i] === 0) continue;
      const r = t.positions.indexOf(i);
      if (r < 0) throw new MoescopeError(`rollout needs ${name} at position ${i} (capture positions from 0)`, "CAPTURE_MISSING");
      // A_l[i, :] = (1-a) mean_h P[h, i, :] + a e_i, renormalised (the causal mask keeps it on 0..i).
      let sum = 0;
      const tmp = new Float64Array(i + 1);
      for (let k = 0; k <= i && k < S; k++) {
        let m = 0;
        for (let h = 0; h < H; h++) m += data[(h * rows + r) * S + k];
        tmp[k] = ((1 - a) * m) / H;
      }
      tmp[i] += a;
      for (let k = 0; k <= i; k++) sum += tmp[k];
      for (let k = 0; k <= i; k++) next[k] += (row[i] * tmp[k]) / sum;
    }
    row = next;
  }
  const pos = Array.from(imagePositions);
  return { map: Float32Array.from(pos, (p) => (p <= query ? row[p] : 0)), row };
}

export interface OcclusionOptions {
  /** "tile": one value per tile (thumbnail included); "block": one per 2×2-patch block (image token). */
  unit?: "tile" | "block";
  /** Only these tiles (global tile indices; default all). */
  tiles?: number[];
  /** unit "block": only these blocks (0 .. tokensPerTile-1) of each tile (default all). */
  blocks?: number[];
  /** Masked tiles per native vision call (default 16). */
  batch?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface OcclusionMap {
  unit: "tile" | "block";
  target: { position: number; token: number; logprob: number };
  /** Per tile: [tiles]; per block: [tiles · tokensPerTile] (NaN for tiles not evaluated). */
  delta: Float32Array;
}

function logSoftmaxAt(logits: Float32Array, token: number): number {
  let mx = -Infinity;
  for (const v of logits) mx = Math.max(mx, v);
  let s = 0;
  for (const v of logits) s += Math.exp(v - mx);
  return logits[token] - mx - Math.log(s);
}

/**
 * Occlusion map for the prediction made at prompt position `position` (the logits of that row) of
 * token `token` (default: the unmasked argmax).
 */
export async function occlusionMap(model: Model, inputs: VisionTraceInputs, position: number, token?: number, opts: OcclusionOptions = {}): Promise<OcclusionMap> {
  const unit = opts.unit ?? "tile";
  const vi = inputs.vision.info;
  const S = vi.imageSize, tl = 3 * S * S, T = vi.tokensPerTile, D = vi.projOut;
  const nTiles = inputs.pixelValues.length / tl;
  if (!(position >= 0 && position < inputs.tokens.length)) throw new MoescopeError(`occlusion: position ${position} is outside the prompt (0..${inputs.tokens.length - 1})`, "BAD_ARGUMENT");
  const prefix = inputs.tokens.subarray(0, position + 1);
  const rowsUpTo = (positions: Int32Array) => positions.findIndex((p) => p > position);
  const run = async (rows: Float32Array) => {
    const cut = rowsUpTo(inputs.embedOverride.positions);
    const n = cut < 0 ? inputs.embedOverride.positions.length : cut;
    const tr = await model.run(prefix, { logitsLast: 1, embedOverride: { positions: inputs.embedOverride.positions.subarray(0, n), rows: rows.subarray(0, n * D) }, signal: opts.signal });
    return tr.logits;
  };
  const base = await run(inputs.embedOverride.rows);
  let target = token ?? 0;
  if (token === undefined) for (let i = 1; i < base.length; i++) if (base[i] > base[target]) target = i;
  const logprob = logSoftmaxAt(base, target);

  const tiles = opts.tiles ?? Array.from({ length: nTiles }, (_, t) => t);
  const delta = new Float32Array(unit === "tile" ? nTiles : nTiles * T).fill(NaN);
  // Masks to evaluate: (tile, block or -1 for the whole tile).
  const masks: Array<[number, number]> = [];
  for (const t of tiles) {
    if (unit === "tile") masks.push([t, -1]);
    else for (const b of opts.blocks ?? Array.from({ length: T }, (_, i) => i)) masks.push([t, b]);
  }
  const batch = Math.max(1, opts.batch ?? 16);
  const g = Math.sqrt(T), block = S / g;
  let done = 0;
  for (let m0 = 0; m0 < masks.length; m0 += batch) {
    const group = masks.slice(m0, m0 + batch);
    const px = new Float32Array(group.length * tl);
    group.forEach(([t, b], i) => {
      const tile = px.subarray(i * tl, (i + 1) * tl);
      if (b >= 0) {
        tile.set(inputs.pixelValues.subarray(t * tl, (t + 1) * tl));
        const y0 = Math.floor(b / g) * block, x0 = (b % g) * block;
        for (let c = 0; c < 3; c++) for (let y = y0; y < y0 + block; y++) tile.fill(0, (c * S + y) * S + x0, (c * S + y) * S + x0 + block);
      } // whole tile: stays 0 = mid-grey
    });
    const enc = await inputs.vision.encode(px, group.length, { signal: opts.signal });
    for (let i = 0; i < group.length; i++) {
      const [t, b] = group[i];
      const rows = Float32Array.from(inputs.embedOverride.rows);
      rows.set(enc.embeds.subarray(i * T * D, (i + 1) * T * D), t * T * D);
      const lp = logSoftmaxAt(await run(rows), target);
      delta[unit === "tile" ? t : t * T + b] = logprob - lp;
      opts.onProgress?.(++done, masks.length);
    }
  }
  return { unit, target: { position, token: target, logprob }, delta };
}
