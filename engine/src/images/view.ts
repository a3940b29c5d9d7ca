/**
 * The interactive grounding view, in the widgets' View style (widgets/src/view.ts: one MIME bundle
 * with text/html, image/png and text/plain): the image with a heat map, and the text below it; hovering
 * or clicking a word with a map shows that word's map over the image. Everything is shipped in the
 * output (one overlay PNG per mapped word, at most `maxMaps`), so it works without a kernel round trip.
 * The static PNG (exports, PDF) is the selected word's overlay.
 */
import { View } from "../../../widgets/src/view";
import type { RgbImage } from "./decode";
import type { ImagePlan } from "./plan";
import { heatmapOverlay, OverlayOptions } from "./render";

export interface GroundingViewOptions extends OverlayOptions {
  title?: string;
  /** Word shown at first (default: the last mapped one). */
  select?: number;
  /** Most maps shipped (default 64; the rest are listed in the notes). */
  maxMaps?: number;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/**
 * words: the text's tokens (display strings); maps: word index -> one value per image feature token
 * of this image (e.g. attentionToImage(...).aggregate, attentionRollout(...).map, occlusionMap(...).delta).
 */
export async function groundingView(image: RgbImage, plan: ImagePlan, words: string[], maps: Map<number, ArrayLike<number>>, opts: GroundingViewOptions = {}): Promise<View> {
  const maxMaps = opts.maxMaps ?? 64;
  const keys = [...maps.keys()].sort((a, b) => a - b);
  const kept = keys.slice(-maxMaps);
  const notes: string[] = [];
  if (kept.length < keys.length) notes.push(`${keys.length - kept.length} earlier mapped words left out (maxMaps ${maxMaps}).`);
  const pngs = new Map<number, Buffer>();
  for (const k of kept) pngs.set(k, await heatmapOverlay(image, plan, maps.get(k)!, { ...opts, maxSide: opts.maxSide ?? 640 }));
  const sel = opts.select !== undefined && pngs.has(opts.select) ? opts.select : kept[kept.length - 1];
  const first = pngs.get(sel)!;
  const side = Math.min(opts.maxSide ?? 640, Math.max(image.width, image.height)) / Math.max(image.width, image.height);
  const width = Math.max(1, Math.round(image.width * side)), height = Math.max(1, Math.round(image.height * side));
  const title = opts.title ?? "Where the model looked";
  const spans = words.map((w, i) =>
    pngs.has(i)
      ? `<span class="moescope-tok ms-g${i === sel ? " sel" : ""}" data-i="${i}" style="background:#fde8c8;cursor:pointer">${esc(w)}</span>`
      : `<span class="moescope-tok" style="opacity:.7">${esc(w)}</span>`,
  );
  const body = `<div style="font-weight:bold">${esc(title)}</div>` +
    `<img class="ms-gimg" src="data:image/png;base64,${first.toString("base64")}" width="${width}" height="${height}" style="max-width:100%;height:auto;display:block;margin:4px 0"/>` +
    `<div>${spans.join("")}</div>`;
  const data: Record<string, string> = {};
  for (const [k, png] of pngs) data[k] = `data:image/png;base64,${png.toString("base64")}`;
  const script = `var img=root.querySelector(".ms-gimg");root.querySelectorAll(".ms-g").forEach(function(s){function show(){img.src=data[s.dataset.i];` +
    `root.querySelectorAll(".ms-g.sel").forEach(function(x){x.classList.remove("sel")});s.classList.add("sel")}s.addEventListener("mouseenter",show);s.addEventListener("click",show)});`;
  return new View(
    { kind: "image-grounding", title, body, svg: "", width, height, text: `${title}: ${pngs.size} mapped words over a ${image.width}×${image.height} image (${plan.rows}×${plan.cols} tiles${plan.thumbnail ? " + thumbnail" : ""})`, notes, script, data, plotlyMime: false },
    first,
  );
}
