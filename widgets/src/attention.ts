/**
 * Attention views: every head of a layer (query × key) with Llama 4's chunk boundaries drawn and its
 * NoPE/global layers labelled, one head zoomed with token labels, and one query's attention over the
 * prompt as tinted text. They read blocks.{l}.attn.hook_pattern [H, rows, S]; long traces are pooled
 * (heads grid), windowed (zoom) or cut to the keys nearest the query (text), and the view says so.
 */
import type { Trace } from "../../engine/src/trace";
import { rgbToHex, scaleColor, SEQ } from "./color";
import { Annotation, axisId, axisKey, baseLayout, Figure, HeatmapTrace, r4, Shape, tokenTicks } from "./figure";
import { tokensSvg, visible } from "./png";
import { htmlEsc, need, pool, tokenLabel } from "./select";
import { figureToSvg } from "./svg";
import { makeView, View } from "./view";

/** "RoPE · chunked (8192)" or "NoPE · global": what kind of attention a Llama 4 layer does. */
export function layerKind(trace: Trace, layer: number): string {
  const p = trace.info.layers[layer];
  if (!p) return "";
  const pos = p.useRope ? "RoPE" : "NoPE";
  const span = p.chunkedAttn ? `chunked attention (chunk ${trace.info.attnChunk})` : "global attention";
  return `${pos} · ${span}${p.temperatureTuning ? " · temperature-tuned" : ""}`;
}

/** The first layer whose attention pattern the trace holds (the default for every attention view). */
export function firstPatternLayer(trace: Trace): number {
  for (let l = 0; l < trace.info.nLayer; l++) if (trace.has(`blocks.${l}.attn.hook_pattern`)) return l;
  return 0;
}

function patternOf(trace: Trace, layer: number) {
  const name = `blocks.${layer}.attn.hook_pattern`;
  need(trace, name, `"blocks.*.attn.hook_pattern" (or blocks.${layer}.attn.hook_pattern)`);
  const t = trace.get(name);
  const [H, rows, S] = t.shape;
  return { t, H, rows, S, heads: trace.record.capture.heads.length ? trace.record.capture.heads : Array.from({ length: H }, (_, h) => h) };
}

/** Lines at chunk boundaries, in the pooled cell coordinates of one subplot. */
function chunkShapes(trace: Trace, layer: number, S: number, queryPos: number[], fr: number, fc: number, xa: string, ya: string): Shape[] {
  const p = trace.info.layers[layer];
  const chunk = trace.info.attnChunk;
  if (!p?.chunkedAttn || !chunk || S <= chunk) return [];
  const out: Shape[] = [];
  const line = { color: "#e15759", width: 1, dash: "dash" as const };
  for (let b = chunk; b < S; b += chunk) {
    const x = b / fc - 0.5;
    out.push({ type: "line", x0: x, x1: x, y0: -0.5, y1: queryPos.length / fr - 0.5, xref: xa, yref: ya, line });
    const r = queryPos.findIndex((q) => q >= b);
    if (r > 0) out.push({ type: "line", x0: -0.5, x1: S / fc - 0.5, y0: r / fr - 0.5, y1: r / fr - 0.5, xref: xa, yref: ya, line });
  }
  return out;
}

/** All heads of one layer as a grid of query × key heat maps. */
export async function attentionHeads(trace: Trace, opts: { layer?: number; maxCells?: number } = {}): Promise<View> {
  const layer = opts.layer ?? firstPatternLayer(trace);
  const { t, H, rows, S, heads } = patternOf(trace, layer);
  // One budget for the whole grid: many heads means coarser bins, not a bigger notebook.
  const budget = opts.maxCells ?? 120_000;
  const side = Math.max(8, Math.min(160, Math.floor(Math.sqrt(budget / H))));
  const cols = Math.ceil(Math.sqrt(H)), gridRows = Math.ceil(H / cols);
  const data = t.data as Float32Array;
  const cell = Math.max(120, Math.min(260, Math.floor(900 / cols)));
  const width = 60 + cols * (cell + 20), height = 90 + gridRows * (cell + 34);
  const traces: HeatmapTrace[] = [];
  const annotations: Annotation[] = [];
  const shapes: Shape[] = [];
  let fr = 1, fc = 1;
  const layout = baseLayout(width, height, `Layer ${layer} attention, ${H} heads (query ↓ × key →) · ${layerKind(trace, layer)}`, { margin: { l: 50, r: 10, t: 60, b: 30 } });
  for (let h = 0; h < H; h++) {
    const gr = Math.floor(h / cols), gc = h % cols;
    const pooled = pool(data.subarray(h * rows * S, (h + 1) * rows * S), rows, S, side, side, "max");
    fr = pooled.fr;
    fc = pooled.fc;
    const xa = axisId("x", h + 1), ya = axisId("y", h + 1);
    traces.push({ type: "heatmap", z: pooled.z.map((r) => r.map(r4)), zmin: 0, zmax: 1, colorscale: SEQ, showscale: false, xaxis: xa, yaxis: ya,
      hovertemplate: `head ${heads[h]}<br>query %{y}, key %{x}${fr > 1 || fc > 1 ? " (bins)" : ""}<br>p %{z:.3f}<extra></extra>` });
    const gx = 1 / cols, gy = 1 / gridRows;
    // Gaps are fractions of a cell, so the panels keep their size whatever the number of heads.
    layout[axisKey(xa)] = { domain: [gc * gx + 0.05 * gx, (gc + 1) * gx - 0.05 * gx], anchor: ya, showticklabels: false, showgrid: false, zeroline: false };
    layout[axisKey(ya)] = { domain: [1 - (gr + 1) * gy + 0.04 * gy, 1 - gr * gy - 0.14 * gy], anchor: xa, autorange: "reversed", showticklabels: false, showgrid: false, zeroline: false };
    annotations.push({ text: `head ${heads[h]}`, x: (gc + 0.5) * gx, y: 1 - gr * gy - 0.13 * gy, xref: "paper", yref: "paper", showarrow: false, xanchor: "center", yanchor: "bottom", font: { size: 11 } });
    shapes.push(...chunkShapes(trace, layer, S, t.positions, fr, fc, xa, ya));
  }
  layout.annotations = annotations;
  layout.shapes = shapes;
  const fig: Figure = { data: traces, layout };
  const notes: string[] = [];
  if (fr > 1 || fc > 1) notes.push(`Pooled (max) into bins of ${fr} queries × ${fc} keys so the grid stays small (${rows} queries × ${S} keys per head); use attentionHead for a zoomed window.`);
  if (shapes.length) notes.push(`Dashed lines: attention chunk boundaries every ${trace.info.attnChunk} tokens.`);
  return makeView({ kind: "attention-heads", title: `attention layer ${layer}`, figure: fig, svg: figureToSvg(fig), width, height,
    text: `attention, layer ${layer} (${layerKind(trace, layer)}): ${H} heads, ${rows} queries × ${S} keys`, notes });
}

/** One head zoomed, with token labels on both axes; long traces show a window of at most maxTokens. */
export async function attentionHead(trace: Trace, opts: { layer?: number; head?: number; maxTokens?: number; end?: number } = {}): Promise<View> {
  const layer = opts.layer ?? firstPatternLayer(trace), head = opts.head ?? 0;
  const { t, rows, S, heads } = patternOf(trace, layer);
  const hi = heads.indexOf(head);
  if (hi < 0) throw new Error(`head ${head} was not captured (heads ${heads.join(", ")})`);
  const data = (t.data as Float32Array).subarray(hi * rows * S, (hi + 1) * rows * S);
  const max = opts.maxTokens ?? 64;
  const endPos = Math.min(opts.end ?? t.positions[rows - 1] + 1, S);
  const qRows = t.positions.map((p, i) => [p, i]).filter(([p]) => p < endPos).slice(-max);
  const k0 = Math.max(0, endPos - max);
  const keys = Array.from({ length: endPos - k0 }, (_, i) => k0 + i);
  const z = qRows.map(([, i]) => keys.map((k) => r4(data[i * S + k])));
  // Hover text is per cell, so it is kept short: it dominates the output's size.
  const ql = new Map(qRows.map(([q]) => [q, htmlEsc(tokenLabel(trace, q))])), kl = keys.map((k) => htmlEsc(tokenLabel(trace, k)));
  const hover = qRows.map(([q, i]) => keys.map((k, j) => (k > q ? "" : `${ql.get(q)} → ${kl[j]}: ${data[i * S + k].toFixed(4)}`)));
  const n = Math.max(keys.length, qRows.length);
  const size = Math.min(1000, Math.max(360, 150 + 11 * n));
  const fig: Figure = {
    data: [{ type: "heatmap", z, zmin: 0, zmax: 1, colorscale: SEQ, hovertext: hover, hoverinfo: "text", showscale: true, colorbar: { title: { text: "p" }, thickness: 12 } }],
    layout: baseLayout(size + 60, size, `Layer ${layer}, head ${head} · ${layerKind(trace, layer)}`, {
      margin: { l: 110, r: 20, t: 50, b: 110 },
      xaxis: { ...tokenTicks(keys.map((k) => tokenLabel(trace, k)), 80), tickangle: -60, showgrid: false, title: { text: "key" } },
      yaxis: { ...tokenTicks(qRows.map(([q]) => tokenLabel(trace, q)), 80), autorange: "reversed", showgrid: false, title: { text: "query" } },
    }),
  };
  fig.layout.shapes = chunkShapes(trace, layer, S, qRows.map(([q]) => q), 1, 1, "x", "y").map((s) => ({ ...s, x0: s.x0 - k0, x1: s.x1 - k0 }));
  const notes: string[] = [];
  if (k0 > 0 || qRows.length < rows) notes.push(`Window: queries and keys ${k0}..${endPos - 1} of ${S} (at most ${max}); attention to earlier keys is not drawn. Pass end: N to move the window.`);
  return makeView({ kind: "attention-head", title: `layer ${layer} head ${head}`, figure: fig, svg: figureToSvg(fig), width: size + 60, height: size,
    text: `attention, layer ${layer} head ${head}: ${qRows.length} queries × ${keys.length} keys shown`, notes });
}

/** Where one query token looks: the tokens before it tinted by attention (one head, or the mean over heads). */
export async function attentionText(trace: Trace, opts: { layer?: number; head?: number; query?: number; maxTokens?: number } = {}): Promise<View> {
  const layer = opts.layer ?? firstPatternLayer(trace);
  const { t, rows, S, heads } = patternOf(trace, layer);
  const query = opts.query ?? t.positions[rows - 1];
  const qi = t.positions.indexOf(query);
  if (qi < 0) throw new Error(`query position ${query} was not captured (rows ${t.positions[0]}..${t.positions[rows - 1]})`);
  const data = t.data as Float32Array;
  const hs = opts.head === undefined ? heads.map((_, i) => i) : [heads.indexOf(opts.head)];
  if (hs[0] < 0) throw new Error(`head ${opts.head} was not captured`);
  const w = new Float64Array(query + 1);
  for (const h of hs) for (let k = 0; k <= query; k++) w[k] += data[h * rows * S + qi * S + k] / hs.length;
  const max = opts.maxTokens ?? 1500;
  const k0 = Math.max(0, query + 1 - max);
  let wmax = 0;
  for (let k = k0; k <= query; k++) wmax = Math.max(wmax, w[k]);
  const toks = [];
  const spans: string[] = [];
  for (let k = k0; k <= query; k++) {
    // Colour relative to the largest weight, so a diffuse head is still readable; the tooltip gives the absolute value.
    const bg = scaleColor(SEQ, wmax > 0 ? (0.85 * w[k]) / wmax : 0);
    toks.push({ text: trace.tokenTexts[k] ?? "", bg, outline: k === query });
    spans.push(`<span class="moescope-tok${k === query ? " sel" : ""}" style="background:${rgbToHex(bg)};color:${w[k] / (wmax || 1) > 0.55 ? "#fff" : "#111"}" title="${htmlEsc(`${tokenLabel(trace, k)}: ${w[k].toFixed(4)}`)}">${htmlEsc(visible(trace.tokenTexts[k] ?? ""))}</span>`);
  }
  const who = opts.head === undefined ? `mean of ${hs.length} heads` : `head ${opts.head}`;
  const title = `Attention from ${tokenLabel(trace, query)} (outlined), layer ${layer}, ${who}`;
  const notes = k0 > 0 ? [`Showing the ${max} keys nearest the query (of ${query + 1}).`] : [];
  const { svg, height } = tokensSvg(title, toks.slice(-400), 900, notes);
  return makeView({ kind: "attention-text", title, svg, width: 900, height,
    body: `<div style="font-weight:bold;font-size:14px;margin-bottom:4px">${htmlEsc(title)}</div><div style="line-height:1.9;max-width:900px">${spans.join("")}</div>`,
    text: `${title}: top keys ` + Array.from(w).map((v, k) => [v, k] as const).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([v, k]) => `${tokenLabel(trace, k)} ${v.toFixed(3)}`).join(", "),
    notes });
}
