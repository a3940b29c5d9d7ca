/**
 * Expert routing views: which expert each token goes to, how sure the router is, how load spreads
 * over experts, and how choices in one MoE layer predict the next. They read only the routing hooks
 * (capture: "routing"), so they work on long traces; token rows are bounded by select.ts.
 */
import type { Trace } from "../../engine/src/trace";
import { expertColor, LOGIT, rgbToHex, Scale, SEQ, tint } from "./color";
import { baseLayout, Figure, r4, tokenTicks } from "./figure";
import { tokensSvg, visible } from "./png";
import { entropyBits, htmlEsc, need, pickRows, PositionRange, rowsFor, sigmoid, softmax, tokenLabel, traceKey } from "./select";
import { figureToSvg } from "./svg";
import { makeView, View } from "./view";

export interface RoutingOptions {
  /** Absolute token positions to show (default: all, sampled down to maxTokens). */
  positions?: PositionRange;
  maxTokens?: number;
}

/** A colour scale with one band per expert, light at gate 0 and full colour at gate 1. */
export function expertGateScale(nExpert: number): Scale {
  const s: Scale = [];
  for (let e = 0; e < nExpert; e++) {
    s.push([e / nExpert, rgbToHex(tint(expertColor(e), 0.12))]);
    s.push([(e + 1) / nExpert, rgbToHex(expertColor(e))]);
  }
  return s;
}
/** Where (expert, gate) falls on expertGateScale. */
export function expertGateZ(expert: number, gate: number): number {
  return expert + 0.001 + 0.998 * Math.max(0, Math.min(1, gate));
}

function routedLayers(trace: Trace): number[] {
  const ls = trace.moeLayers.filter((l) => trace.has(`blocks.${l}.mlp.hook_expert_indices`) && trace.has(`blocks.${l}.mlp.hook_expert_weights`));
  if (!ls.length) throw new Error(`this view needs the routing hooks; run with capture: "routing"`);
  return ls;
}

/** Tokens × MoE layers, each cell coloured by the chosen (top-1) expert, with the gate as intensity. */
export async function routingGrid(trace: Trace, opts: RoutingOptions = {}): Promise<View> {
  const layers = routedLayers(trace);
  const E = trace.info.nExpert;
  const first = trace.routing(layers[0]);
  const pick = pickRows(first.positions, rowsFor(layers.length, opts.maxTokens ?? 400), opts.positions);
  const z: number[][] = [], hover: string[][] = [];
  const routes = layers.map((l) => trace.routing(l));
  for (const [i, row] of pick.rows.entries()) {
    const pos = pick.positions[i];
    z.push(routes.map((r) => expertGateZ(r.experts[row * r.k], r.gates[row * r.k])));
    const label = htmlEsc(tokenLabel(trace, pos));
    hover.push(routes.map((r, j) => `${label}<br>L${layers[j]}: e${r.experts[row * r.k]}, gate ${r.gates[row * r.k].toFixed(3)}` +
      (r.k > 1 ? `<br>also ${Array.from({ length: r.k - 1 }, (_, q) => `e${r.experts[row * r.k + q + 1]} (${r.gates[row * r.k + q + 1].toFixed(2)})`).join(", ")}` : "")));
  }
  const rows = z.length;
  const width = Math.min(1100, Math.max(520, 160 + 34 * layers.length));
  const height = Math.min(1400, Math.max(260, 110 + 15 * rows));
  const yt = tokenTicks(pick.positions.map((p) => tokenLabel(trace, p)), 60);
  const fig: Figure = {
    data: [{ type: "heatmap", z, zmin: 0, zmax: E, colorscale: expertGateScale(E), showscale: false, hovertext: hover, hoverinfo: "text", xgap: 1, ygap: rows > 150 ? 0 : 1 }],
    layout: baseLayout(width, height, `Routing: top-1 expert (colour) and gate (intensity)`, {
      margin: { l: 120, r: 20, t: 50, b: 50 },
      xaxis: { title: { text: "MoE layer" }, tickvals: layers.map((_, i) => i), ticktext: layers.map(String), showgrid: false },
      yaxis: { autorange: "reversed", ...yt, showgrid: false, tickfont: { size: 10 } },
    }),
  };
  const used = new Map<number, number>();
  for (const r of routes) for (const i of pick.rows) used.set(r.experts[i * r.k], (used.get(r.experts[i * r.k]) ?? 0) + 1);
  const legend = [...used.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
  fig.layout.annotations = [{ text: "experts: " + legend.map(([e]) => `<span style="color:${rgbToHex(expertColor(e))}">■</span> e${e}`).join("  "), x: 0, y: 1, xref: "paper", yref: "paper", showarrow: false, xanchor: "left", yanchor: "bottom", font: { size: 10 } }];
  return makeView({
    kind: "routing-grid",
    title: "routing grid",
    figure: fig,
    svg: figureToSvg(fig),
    width,
    height,
    text: `routing grid: ${rows} tokens × ${layers.length} MoE layers, ${E} experts (top-${first.k})`,
    notes: pick.note ? [pick.note] : [],
    // Clicking a row selects that token in linked views of the same run on the page.
    data: { key: traceKey(trace), positions: pick.positions },
    script: `if(plotEl&&plotEl.on)plotEl.on("plotly_click",function(ev){var p=ev&&ev.points&&ev.points[0];if(!p)return;var pos=data.positions[Math.round(p.y)];if(pos!==undefined)window.dispatchEvent(new CustomEvent("moescope-select",{detail:{key:data.key,pos:pos}}))});`,
  });
}

/** One MoE layer's router logits as a tokens × experts heat map (the chosen expert is outlined in the hover). */
export async function routerLogits(trace: Trace, opts: RoutingOptions & { layer?: number; maxExperts?: number } = {}): Promise<View> {
  const layers = routedLayers(trace);
  const layer = opts.layer ?? layers[0];
  need(trace, `blocks.${layer}.mlp.hook_router_logits`, `"routing"`);
  const r = trace.routing(layer);
  const E = trace.info.nExpert;
  const maxE = opts.maxExperts ?? 128;
  const pick = pickRows(r.positions, rowsFor(Math.min(E, maxE), opts.maxTokens ?? 300), opts.positions);
  const logits = r.logits!;
  // Above maxExperts, keep the experts that win most often in the shown rows (say so).
  let experts = Array.from({ length: E }, (_, e) => e);
  let note2: string | undefined;
  if (E > maxE) {
    const wins = new Array<number>(E).fill(0);
    for (const i of pick.rows) wins[r.experts[i * r.k]]++;
    experts = experts.sort((a, b) => wins[b] - wins[a]).slice(0, maxE).sort((a, b) => a - b);
    note2 = `Showing ${maxE} of ${E} experts (those chosen most often in the shown tokens).`;
  }
  let lo = Infinity, hi = -Infinity;
  const z: number[][] = [], hover: string[][] = [];
  pick.rows.forEach((row, i) => {
    const chosen = r.experts[row * r.k];
    z.push(experts.map((e) => {
      const v = logits[row * E + e];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      return r4(v);
    }));
    const label = htmlEsc(tokenLabel(trace, pick.positions[i]));
    hover.push(experts.map((e) => `${label}<br>e${e}: ${logits[row * E + e].toFixed(3)} (gate ${sigmoid(logits[row * E + e]).toFixed(2)})${e === chosen ? " chosen" : ""}`));
  });
  const width = Math.min(1100, Math.max(420, 200 + 16 * experts.length));
  const height = Math.min(1400, Math.max(260, 110 + 15 * z.length));
  const fig: Figure = {
    data: [{ type: "heatmap", z, zmin: r4(lo), zmax: r4(hi), colorscale: LOGIT, hovertext: hover, hoverinfo: "text", showscale: true, colorbar: { title: { text: "logit" }, thickness: 12 } }],
    layout: baseLayout(width, height, `Router logits, layer ${layer}`, {
      margin: { l: 120, r: 20, t: 50, b: 50 },
      xaxis: { title: { text: "expert" }, ...tokenTicks(experts.map(String), 40), showgrid: false },
      yaxis: { autorange: "reversed", ...tokenTicks(pick.positions.map((p) => tokenLabel(trace, p)), 60), showgrid: false, tickfont: { size: 10 } },
    }),
  };
  return makeView({
    kind: "router-logits", title: `router logits layer ${layer}`, figure: fig, svg: figureToSvg(fig), width, height,
    text: `router logits, layer ${layer}: ${z.length} tokens × ${experts.length} experts, range [${lo.toFixed(2)}, ${hi.toFixed(2)}]`,
    notes: [pick.note, note2].filter((x): x is string => !!x),
  });
}

/** The prompt as text, each token tinted by its expert at one layer; hovering shows every expert's logit and gate. */
export async function expertText(trace: Trace, opts: RoutingOptions & { layer?: number } = {}): Promise<View> {
  const layers = routedLayers(trace);
  const layer = opts.layer ?? layers[Math.floor(layers.length / 2)];
  const r = trace.routing(layer);
  const E = trace.info.nExpert;
  const pick = pickRows(r.positions, opts.maxTokens ?? 1000, opts.positions);
  // Tooltips list every expert when there are few; with many, the 16 highest (the rest would be noise and bytes).
  const listN = E <= 16 ? E : 16;
  const spans: string[] = [];
  const toks = pick.rows.map((row, i) => {
    const pos = pick.positions[i];
    const e = r.experts[row * r.k], g = r.gates[row * r.k];
    const bg = tint(expertColor(e), 0.25 + 0.75 * g);
    let title = `${tokenLabel(trace, pos)} · layer ${layer}\nchosen: expert ${e}, gate ${g.toFixed(3)}`;
    if (r.logits) {
      const lg = r.logits.subarray(row * E, (row + 1) * E);
      const order = Array.from({ length: E }, (_, x) => x).sort((a, b) => lg[b] - lg[a]);
      title += `\ntop-1 margin: ${(lg[order[0]] - lg[order[1] ?? order[0]]).toFixed(3)} logits`;
      title += "\n" + order.slice(0, listN).map((x) => `e${x}: logit ${lg[x].toFixed(3)}, gate ${sigmoid(lg[x]).toFixed(3)}`).join("\n");
      if (listN < E) title += `\n… ${E - listN} more experts`;
    }
    spans.push(`<span class="moescope-tok" style="background:${rgbToHex(bg)}" title="${htmlEsc(title)}">${htmlEsc(visible(trace.tokenTexts[pos] ?? ""))}<small>e${e}</small></span>`);
    return { text: trace.tokenTexts[pos] ?? "", bg, sub: `e${e}` };
  });
  const title = `Tokens tinted by their expert at layer ${layer} (hover for every expert's logit and gate)`;
  const { svg, height } = tokensSvg(title, toks.slice(0, 400), 900, toks.length > 400 ? [`static image shows the first 400 of ${toks.length} tokens`] : []);
  return makeView({
    kind: "expert-text", title, svg, width: 900, height,
    body: `<div style="font-weight:bold;font-size:14px;margin-bottom:4px">${htmlEsc(title)}</div><div style="line-height:2.2;max-width:900px">${spans.join("")}</div>`,
    text: `expert text, layer ${layer}: ` + toks.slice(0, 30).map((t) => `${visible(t.text)}[${t.sub}]`).join(" ") + (toks.length > 30 ? " …" : ""),
    notes: pick.note ? [pick.note] : [],
  });
}

/** Per MoE layer: the share of routed tokens each expert gets, and two entropies (load balance, router confidence). */
export async function expertLoad(trace: Trace, opts: RoutingOptions = {}): Promise<View> {
  const layers = routedLayers(trace);
  const E = trace.info.nExpert;
  const load: number[][] = [];
  const loadH: number[] = [], tokH: (number | null)[] = [];
  const lo = opts.positions?.begin ?? -Infinity, hi = opts.positions?.end ?? Infinity;
  let n = 0;
  for (const l of layers) {
    const r = trace.routing(l);
    const cnt = new Array<number>(E).fill(0);
    let hs = 0;
    n = 0;
    r.positions.forEach((p, i) => {
      if (p < lo || p >= hi) return;
      n++;
      for (let q = 0; q < r.k; q++) cnt[r.experts[i * r.k + q]]++;
      if (r.logits) hs += entropyBits(softmax(r.logits.subarray(i * E, (i + 1) * E)));
    });
    const tot = cnt.reduce((a, b) => a + b, 0) || 1;
    load.push(cnt.map((c) => r4(c / tot)));
    loadH.push(r4(entropyBits(cnt)));
    tokH.push(r.logits ? r4(hs / Math.max(1, n)) : null);
  }
  const width = Math.min(1100, Math.max(720, 240 + 10 * E));
  const height = Math.max(380, Math.min(900, 200 + 18 * layers.length));
  const fig: Figure = {
    data: [
      // Shares are written in the cells (few experts) rather than read off a colour bar, which plotly would squeeze in beside the subplot.
      { type: "heatmap", z: load, zmin: 0, zmax: Math.max(...load.flat(), 1e-6), colorscale: SEQ, xaxis: "x", yaxis: "y", showscale: false,
        ...(E <= 16 ? { text: load.map((r) => r.map((v) => `${(100 * v).toFixed(0)}%`)), texttemplate: "%{text}" } : {}),
        hovertemplate: "layer %{y}<br>expert %{x}<br>share %{z:.3f}<extra></extra>" },
      { type: "scatter", x: layers, y: loadH, mode: "lines+markers", name: "load entropy (bits)", xaxis: "x2", yaxis: "y2", line: { color: "#e15759" } },
      { type: "scatter", x: layers, y: tokH, mode: "lines+markers", name: "mean router entropy per token (bits)", xaxis: "x2", yaxis: "y2", line: { color: "#4e79a7", dash: "dash" } },
    ],
    layout: baseLayout(width, height, `Expert load and routing entropy per MoE layer (${n} tokens; max log2 ${E} = ${Math.log2(E).toFixed(2)} bits)`, {
      margin: { l: 70, r: 40, t: 50, b: 90 },
      xaxis: { domain: [0, 0.55], title: { text: "expert" }, showgrid: false },
      yaxis: { autorange: "reversed", title: { text: "MoE layer" }, tickvals: layers.map((_, i) => i), ticktext: layers.map(String), showgrid: false },
      xaxis2: { domain: [0.72, 1], title: { text: "layer" }, anchor: "y2" },
      yaxis2: { title: { text: "bits" }, anchor: "x2", range: [0, Math.log2(E) * 1.05] },
      showlegend: true,
      legend: { orientation: "h", x: 1, xanchor: "right", y: -0.2 }, // anchored inside the paper, so plotly does not widen the margin for it
    }),
  };
  fig.data[0].xaxis = "x";
  const lines = layers.map((l, i) => `layer ${l}: load entropy ${loadH[i].toFixed(2)} bits${tokH[i] !== null ? `, router entropy ${tokH[i]!.toFixed(2)} bits` : ""}, busiest expert ${load[i].indexOf(Math.max(...load[i]))} (${(100 * Math.max(...load[i])).toFixed(0)}%)`);
  return makeView({ kind: "expert-load", title: "expert load", figure: fig, svg: figureToSvg(fig), width, height, text: `expert load over ${n} tokens:\n` + lines.join("\n") });
}

/** Co-activation between one MoE layer and the next: P(expert at the next layer | expert here), with counts on hover. */
export async function coactivation(trace: Trace, opts: RoutingOptions & { layer?: number } = {}): Promise<View> {
  const layers = routedLayers(trace);
  if (layers.length < 2) throw new Error("co-activation needs at least two MoE layers with routing captured");
  const layer = opts.layer ?? layers[0];
  const li = layers.indexOf(layer);
  if (li < 0 || li === layers.length - 1) throw new Error(`layer ${layer} is not a MoE layer followed by another (routed layers: ${layers.join(", ")})`);
  const next = layers[li + 1];
  const a = trace.routing(layer), b = trace.routing(next);
  const E = trace.info.nExpert;
  const cnt = Array.from({ length: E }, () => new Array<number>(E).fill(0));
  const lo = opts.positions?.begin ?? -Infinity, hi = opts.positions?.end ?? Infinity;
  let n = 0;
  a.positions.forEach((p, i) => {
    const j = b.positions.indexOf(p);
    if (j < 0 || p < lo || p >= hi) return;
    n++;
    for (let q = 0; q < a.k; q++) for (let s = 0; s < b.k; s++) cnt[a.experts[i * a.k + q]][b.experts[j * b.k + s]]++;
  });
  // With many experts, only rows/columns that occur (the rest are empty) and at most 64 of each.
  let rowsE = Array.from({ length: E }, (_, e) => e).filter((e) => cnt[e].some((c) => c > 0));
  let colsE = Array.from({ length: E }, (_, e) => e).filter((e) => cnt.some((row) => row[e] > 0));
  const notes: string[] = [];
  const cap = 64;
  if (rowsE.length > cap || colsE.length > cap) {
    const rs = (e: number) => cnt[e].reduce((x, y) => x + y, 0), cs = (e: number) => cnt.reduce((x, row) => x + row[e], 0);
    rowsE = rowsE.sort((x, y) => rs(y) - rs(x)).slice(0, cap).sort((x, y) => x - y);
    colsE = colsE.sort((x, y) => cs(y) - cs(x)).slice(0, cap).sort((x, y) => x - y);
    notes.push(`Showing the ${cap} busiest experts of each layer.`);
  }
  if (E > rowsE.length || E > colsE.length) notes.push(`Experts that no shown token chose are left out (${E - rowsE.length} at layer ${layer}, ${E - colsE.length} at layer ${next}).`);
  const z = rowsE.map((e) => {
    const tot = cnt[e].reduce((x, y) => x + y, 0) || 1;
    return colsE.map((f) => r4(cnt[e][f] / tot));
  });
  const hover = rowsE.map((e) => colsE.map((f) => `e${e} at layer ${layer} → e${f} at layer ${next}: ${cnt[e][f]} tokens`));
  const size = Math.min(900, Math.max(360, 160 + 18 * Math.max(rowsE.length, colsE.length)));
  const fig: Figure = {
    data: [{ type: "heatmap", z, zmin: 0, zmax: 1, colorscale: SEQ, hovertext: hover, hoverinfo: "text", showscale: true, colorbar: { title: { text: "P(next | here)" }, thickness: 12 }, xgap: 1, ygap: 1 }],
    layout: baseLayout(size + 80, size, `Co-activation: layer ${layer} → layer ${next} (${n} tokens)`, {
      xaxis: { title: { text: `expert at layer ${next}` }, ...tokenTicks(colsE.map(String), 40), showgrid: false },
      yaxis: { autorange: "reversed", title: { text: `expert at layer ${layer}` }, ...tokenTicks(rowsE.map(String), 40), showgrid: false },
    }),
  };
  return makeView({ kind: "coactivation", title: "co-activation", figure: fig, svg: figureToSvg(fig), width: size + 80, height: size, text: `co-activation layer ${layer} → ${next}: ${n} tokens, ${rowsE.length} × ${colsE.length} experts`, notes });
}
