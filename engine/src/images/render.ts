/**
 * Rendering grounding maps with sharp (PNG out):
 *  - `heatmapOverlay`: one value per image feature token painted over the ORIGINAL image through the
 *    token geometry (each local-tile token covers its rectangle; padding tokens are not drawn; thumbnail
 *    tokens are left out unless `thumbnailWeight` > 0, since they blur the whole image at 1/12 scale);
 *  - `tileView`: the padded canvas cut into tiles with separators, the thumbnail after them, each
 *    with its own tokens' heat (what the model actually saw, tile by tile);
 *  - `groundingHtml`: a self-contained interactive view: hover a word to show its map.
 * Values are normalised to [0, 1] over what is drawn (min → transparent, max → opaque); the colour map
 * is a small "inferno"-like ramp so that low is dark and high is bright.
 */
import sharp from "sharp";
import { imageTokenGeometry } from "./geometry";
import type { RgbImage } from "./decode";
import type { ImagePlan } from "./plan";
import { resizeBilinear } from "./resample";

const RAMP: Array<[number, number, number]> = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
export function colour(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  return [0, 1, 2].map((c) => Math.round(RAMP[i][c] + f * (RAMP[i + 1][c] - RAMP[i][c]))) as [number, number, number];
}

function normalise(values: ArrayLike<number>): Float32Array {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) (lo = Math.min(lo, values[i])), (hi = Math.max(hi, values[i]));
  return Float32Array.from(values, (v) => (Number.isFinite(v) && hi > lo ? (v - lo) / (hi - lo) : 0));
}

export interface OverlayOptions {
  /** Opacity of the strongest value (default 0.65). */
  alpha?: number;
  /** Longest side of the output in pixels (default: the image's own, at most 1024). */
  maxSide?: number;
  /** Blend the thumbnail tokens in with this weight (default 0). */
  thumbnailWeight?: number;
}

/** `values`: one per feature token of this image (tiles row-major, thumbnail last). */
export async function heatmapOverlay(image: RgbImage, plan: ImagePlan, values: ArrayLike<number>, opts: OverlayOptions = {}): Promise<Buffer> {
  const geo = imageTokenGeometry(plan);
  if (values.length !== geo.length) throw new Error(`heatmapOverlay: ${values.length} values for the image's ${geo.length} tokens`);
  const side = Math.min(opts.maxSide ?? 1024, Math.max(image.width, image.height));
  const k = side / Math.max(image.width, image.height);
  const W = Math.max(1, Math.round(image.width * k)), H = Math.max(1, Math.round(image.height * k));
  const acc = new Float64Array(W * H), wsum = new Float64Array(W * H);
  const tw = opts.thumbnailWeight ?? 0;
  geo.forEach((g, i) => {
    if (!g.imageRect || !Number.isFinite(values[i])) return;
    const w = g.thumbnail ? tw : 1;
    if (w <= 0) return;
    const x0 = Math.floor(g.imageRect.x0 * k), x1 = Math.min(W, Math.ceil(g.imageRect.x1 * k));
    const y0 = Math.floor(g.imageRect.y0 * k), y1 = Math.min(H, Math.ceil(g.imageRect.y1 * k));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) (acc[y * W + x] += w * values[i]), (wsum[y * W + x] += w);
  });
  const map = normalise(Float64Array.from(acc, (v, i) => (wsum[i] > 0 ? v / wsum[i] : NaN)));
  const alpha = opts.alpha ?? 0.65;
  const base = W === image.width && H === image.height ? image.rgb : resizeBilinear(image.rgb, image.height, image.width, 3, H, W);
  const out = Buffer.alloc(W * H * 3);
  for (let i = 0; i < W * H; i++) {
    const a = wsum[i] > 0 ? alpha * map[i] : 0;
    const c = colour(map[i]);
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = Math.round(base[i * 3 + ch] * (1 - a) + c[ch] * a);
  }
  return sharp(out, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
}

/**
 * The tiles as the model saw them (from the pixel values, [tiles, 3, S, S]) in their grid with
 * `gap`-pixel separators, the thumbnail to the right, each token's block tinted by its value.
 */
export async function tileView(pixelValues: Float32Array, plan: ImagePlan, values?: ArrayLike<number>, opts: { gap?: number; alpha?: number } = {}): Promise<Buffer> {
  const S = plan.tile, gap = opts.gap ?? 8, alpha = opts.alpha ?? 0.6, T = plan.tokensPerTile, g = Math.sqrt(T), block = S / g;
  const W = plan.cols * S + (plan.cols - 1) * gap + (plan.thumbnail ? gap * 3 + S : 0);
  const H = plan.rows * S + (plan.rows - 1) * gap;
  const out = Buffer.alloc(W * H * 3, 255);
  const norm = values ? normalise(values) : undefined;
  for (let t = 0; t < plan.tiles; t++) {
    const thumb = plan.thumbnail && t === plan.tiles - 1;
    const ox = thumb ? plan.cols * S + (plan.cols - 1) * gap + gap * 3 : (t % plan.cols) * (S + gap);
    const oy = thumb ? 0 : Math.floor(t / plan.cols) * (S + gap);
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const tok = t * T + Math.floor(y / block) * g + Math.floor(x / block);
        const a = norm ? alpha * norm[tok] : 0;
        const c = norm ? colour(norm[tok]) : [0, 0, 0];
        for (let ch = 0; ch < 3; ch++) {
          const v = Math.round((pixelValues[((t * 3 + ch) * S + y) * S + x] * 0.5 + 0.5) * 255);
          out[((oy + y) * W + ox + x) * 3 + ch] = Math.round(Math.min(255, Math.max(0, v)) * (1 - a) + c[ch] * a);
        }
      }
  }
  return sharp(out, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
}

/** A self-contained HTML view: the text as words; hovering one with a map shows it over the image. */
export function groundingHtml(words: string[], maps: Map<number, Buffer>, opts: { title?: string; image?: Buffer } = {}): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
  const id = `g${Math.random().toString(36).slice(2, 10)}`;
  const uris: Record<number, string> = {};
  for (const [i, png] of maps) uris[i] = `data:image/png;base64,${png.toString("base64")}`;
  const first = opts.image ? `data:image/png;base64,${opts.image.toString("base64")}` : Object.values(uris)[0] ?? "";
  const spans = words.map((w, i) => (uris[i] ? `<span data-i="${i}" style="cursor:pointer;border-bottom:2px solid #f98e09">${esc(w)}</span>` : `<span>${esc(w)}</span>`)).join("");
  return `<div id="${id}" style="font-family:sans-serif">${opts.title ? `<div style="font-weight:bold">${esc(opts.title)}</div>` : ""}` +
    `<img style="max-width:100%;display:block;margin:4px 0" src="${first}"/><div style="white-space:pre-wrap">${spans}</div>` +
    `<script>(function(){const r=document.getElementById(${JSON.stringify(id)});const m=${JSON.stringify(uris)};const img=r.querySelector("img");` +
    `r.querySelectorAll("span[data-i]").forEach(s=>s.addEventListener("mouseenter",()=>{img.src=m[s.dataset.i];}));})();</script></div>`;
}
