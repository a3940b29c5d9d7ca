/**
 * Activation views: the residual stream's norm per layer and position, the logit lens, and the
 * comparison of two runs of the same prompt (e.g. with and without an expert ablated).
 *
 * The logit lens is exact, not an approximation: for each layer L it re-runs the prompt with the
 * LAST layer's residual (blocks.{last}.hook_resid_post) replaced, at the lens positions, by layer L's
 * residual. What follows that hook point is only the final RMSNorm and lm_head, so the logits that
 * come out are exactly lm_head(RMSNorm(resid_L)), computed by the engine with the model's own weights.
 * It costs one run per layer, over the prompt cut at the last lens position (causal: later tokens
 * cannot change earlier logits), which is cheap on small models and bounded by maxPositions elsewhere.
 */
import type { Model } from "../../engine/src/model";
import type { Trace } from "../../engine/src/trace";
import { SEQ } from "./color";
import { baseLayout, Figure, r4, tokenTicks } from "./figure";
import { visible } from "./png";
import { htmlEsc, pickRows, pool, PositionRange, rowsFor, softmax, tokenLabel } from "./select";
import { figureToSvg } from "./svg";
import { makeView, View } from "./view";

/** ‖resid_post‖ for every layer (rows) and token position (columns); long traces are averaged into bins. */
export async function residualNorms(trace: Trace, opts: { maxTokens?: number; positions?: PositionRange } = {}): Promise<View> {
  const L = trace.info.nLayer;
  const layers = Array.from({ length: L }, (_, l) => l).filter((l) => trace.has(`blocks.${l}.hook_resid_post`));
  if (!layers.length) throw new Error(`residualNorms needs blocks.*.hook_resid_post; run with capture: "blocks.*.hook_resid_post"`);
  const t0 = trace.get(`blocks.${layers[0]}.hook_resid_post`);
  const D = t0.shape[1];
  const lo = opts.positions?.begin ?? -Infinity, hi = opts.positions?.end ?? Infinity;
  const cols = t0.positions.map((p, i) => [p, i]).filter(([p]) => p >= lo && p < hi);
  const norms = new Float64Array(layers.length * cols.length);
  layers.forEach((l, li) => {
    const d = trace.get(`blocks.${l}.hook_resid_post`).data as Float32Array;
    cols.forEach(([, i], c) => {
      let s = 0;
      for (let k = 0; k < D; k++) s += d[i * D + k] * d[i * D + k];
      norms[li * cols.length + c] = Math.sqrt(s);
    });
  });
  const maxT = rowsFor(layers.length, opts.maxTokens ?? 400);
  const pooled = pool(norms, layers.length, cols.length, layers.length, maxT, "mean");
  const labels = cols.filter((_, c) => c % pooled.fc === 0).map(([p]) => tokenLabel(trace, p));
  const zmax = Math.max(...pooled.z.flat());
  const width = Math.min(1200, Math.max(500, 140 + 14 * pooled.z[0].length));
  const height = Math.max(260, 120 + 22 * layers.length);
  const fig: Figure = {
    data: [{ type: "heatmap", z: pooled.z.map((r) => r.map(r4)), zmin: 0, zmax: r4(zmax), colorscale: SEQ, showscale: true, colorbar: { title: { text: "‖x‖" }, thickness: 12 },
      hovertext: pooled.z.map((r, li) => r.map((v, c) => `L${layers[li]} ${htmlEsc(labels[c] ?? "")}${pooled.fc > 1 ? ` +${pooled.fc - 1}` : ""}: ${v.toFixed(2)}`)), hoverinfo: "text" }],
    layout: baseLayout(width, height, `Residual stream norm ‖resid_post‖ per layer and token`, {
      margin: { l: 60, r: 20, t: 50, b: 100 },
      xaxis: { ...tokenTicks(labels, 60), tickangle: -60, showgrid: false },
      yaxis: { autorange: "reversed", title: { text: "layer" }, tickvals: layers.map((_, i) => i), ticktext: layers.map(String), showgrid: false },
    }),
  };
  const notes = pooled.fc > 1 ? [`Averaged over bins of ${pooled.fc} tokens (${cols.length} tokens in all).`] : [];
  const perLayer = layers.map((l, li) => `L${l} ${(norms.subarray(li * cols.length, (li + 1) * cols.length).reduce((a, b) => a + b, 0) / cols.length).toFixed(2)}`);
  return makeView({ kind: "residual-norms", title: "residual norms", figure: fig, svg: figureToSvg(fig), width, height,
    text: `residual norm (mean over ${cols.length} tokens): ${perLayer.join(", ")}`, notes });
}

export interface LensResult {
  layers: number[];
  positions: number[];
  /** [layer][position] top-k token ids and probabilities. */
  top: { ids: number[]; probs: number[] }[][];
}

/** Computes the logit lens (see the file comment for why it is exact). */
export async function computeLogitLens(model: Model, trace: Trace, opts: { positions?: number[]; maxPositions?: number; topK?: number } = {}): Promise<LensResult> {
  const info = trace.info;
  const last = info.nLayer - 1;
  const maxP = opts.maxPositions ?? 16;
  const positions = (opts.positions ?? Array.from({ length: Math.min(maxP, trace.nPrompt) }, (_, i) => trace.nPrompt - Math.min(maxP, trace.nPrompt) + i)).slice(0, maxP).sort((a, b) => a - b);
  if (positions.some((p) => p < 0 || p >= trace.nPrompt)) throw new Error(`lens positions must be prompt positions in [0, ${trace.nPrompt - 1}]`);
  const end = positions[positions.length - 1] + 1;
  const prompt = trace.tokens.subarray(0, end);
  const haveAll = Array.from({ length: info.nLayer }, (_, l) => l).every((l) => trace.has(`blocks.${l}.hook_resid_post`) && positions.every((p) => trace.get(`blocks.${l}.hook_resid_post`).positions.includes(p)));
  // Interventions recorded in the trace are not replayed here; the residuals come from the trace when it has them.
  const src = haveAll ? trace : await model.run(prompt, { capture: { names: "blocks.*.hook_resid_post", positions: { begin: positions[0], end } } });
  const k = opts.topK ?? 3;
  const top: LensResult["top"] = [];
  const layers = Array.from({ length: info.nLayer }, (_, l) => l);
  for (const l of layers) {
    const values = new Float32Array(positions.length * info.nEmbd);
    positions.forEach((p, i) => values.set(src.row(`blocks.${l}.hook_resid_post`, p) as Float32Array, i * info.nEmbd));
    const run = await model.run(prompt, {
      capture: { names: "unembed.hook_out", positions: { begin: positions[0], end } },
      interventions: l === last ? undefined : { patch: [{ name: `blocks.${last}.hook_resid_post`, positions, values }] },
    });
    top.push(positions.map((p) => {
      const pr = softmax(run.row("unembed.hook_out", p) as Float32Array);
      const ids = Array.from({ length: pr.length }, (_, i) => i).sort((a, b) => pr[b] - pr[a]).slice(0, k);
      return { ids, probs: ids.map((i) => pr[i]) };
    }));
  }
  return { layers, positions, top };
}

/** The logit lens as a table: layers × positions, each cell the top token of that layer's residual, coloured by its probability. */
export async function logitLens(model: Model, trace: Trace, opts: { positions?: number[]; maxPositions?: number; topK?: number } = {}): Promise<View> {
  const lens = await computeLogitLens(model, trace, opts);
  const texts = (id: number) => visible(model.tokenStrings([id])[0]);
  const z = lens.top.map((row) => row.map((c) => r4(c.probs[0])));
  const text = lens.top.map((row) => row.map((c) => texts(c.ids[0])));
  const hover = lens.top.map((row, li) => row.map((c, pi) => `layer ${lens.layers[li]} at ${htmlEsc(tokenLabel(trace, lens.positions[pi]))}<br>` + c.ids.map((id, j) => `${htmlEsc(texts(id))}: ${c.probs[j].toFixed(3)}`).join("<br>")));
  const width = Math.min(1300, 140 + 78 * lens.positions.length);
  const height = Math.max(260, 120 + 26 * lens.layers.length);
  const fig: Figure = {
    data: [{ type: "heatmap", z, zmin: 0, zmax: 1, colorscale: SEQ, text, texttemplate: "%{text}", hovertext: hover, hoverinfo: "text", showscale: true, colorbar: { title: { text: "p(top)" }, thickness: 12 }, xgap: 1, ygap: 1 }],
    layout: baseLayout(width, height, `Logit lens: top token of each layer's residual through the final norm and lm_head (exact)`, {
      margin: { l: 60, r: 20, t: 50, b: 90 },
      xaxis: { tickvals: lens.positions.map((_, i) => i), ticktext: lens.positions.map((p) => tokenLabel(trace, p)), tickangle: -45, showgrid: false, title: { text: "input token" } },
      yaxis: { autorange: "reversed", tickvals: lens.layers.map((_, i) => i), ticktext: lens.layers.map(String), title: { text: "layer" }, showgrid: false },
    }),
  };
  const colW = 14;
  const head = "layer | " + lens.positions.map((p) => tokenLabel(trace, p, false).padEnd(colW).slice(0, colW)).join(" ");
  const body = lens.top.map((row, li) => `${String(lens.layers[li]).padStart(5)} | ` + row.map((c) => `${texts(c.ids[0])} ${c.probs[0].toFixed(2)}`.padEnd(colW).slice(0, colW)).join(" "));
  return makeView({ kind: "logit-lens", title: "logit lens", figure: fig, svg: figureToSvg(fig), width, height,
    text: [head, ...body].join("\n"),
    notes: [`Exact: layer L's residual replaces the last layer's (blocks.${trace.info.nLayer - 1}.hook_resid_post) and the engine applies RMSNorm + lm_head; one run per layer.`,
      ...(Object.keys(trace.record.interventions).length ? ["The trace had interventions: residuals taken from it include their effect; residuals the lens had to compute itself do not."] : [])] });
}

/** Two runs of the same prompt side by side: which next-token logits moved most, and where routing changed. */
export async function compareTraces(a: Trace, b: Trace, opts: { position?: number; topK?: number; labels?: [string, string]; maxTokens?: number; model?: Model } = {}): Promise<View> {
  const [la, lb] = opts.labels ?? ["A", "B"];
  const n = Math.min(a.nPrompt, b.nPrompt);
  for (let i = 0; i < n; i++) if (a.tokens[i] !== b.tokens[i]) throw new Error(`the two traces' prompts differ at position ${i}; compare runs of the same prompt`);
  const pos = opts.position ?? n - 1;
  const xa = a.logitsAt(pos), xb = b.logitsAt(pos);
  const k = opts.topK ?? 12;
  const order = Array.from({ length: xa.length }, (_, i) => i).sort((p, q) => Math.abs(xb[q] - xa[q]) - Math.abs(xb[p] - xa[p])).slice(0, k);
  const pa = softmax(xa), pb = softmax(xb);
  const tok = (id: number) => `${visible(a.tokenTexts.length ? tokenText(a, id, opts.model) : String(id))} (${id})`;
  const labels = order.map(tok);
  const diffs = order.map((i) => r4(xb[i] - xa[i]));
  let kl = 0;
  for (let i = 0; i < pa.length; i++) if (pa[i] > 0 && pb[i] > 0) kl += pa[i] * Math.log(pa[i] / pb[i]);
  const argA = argmax(xa), argB = argmax(xb);

  // Routing changes: top-1 expert per token and MoE layer, where both traces captured it.
  const layers = a.moeLayers.filter((l) => a.has(`blocks.${l}.mlp.hook_expert_indices`) && b.has(`blocks.${l}.mlp.hook_expert_indices`));
  const z: number[][] = [], hover: string[][] = [];
  let changed = 0, total = 0;
  let pickNote: string | undefined;
  let rowLabels: string[] = [];
  const perLayer = layers.map(() => 0);
  if (layers.length) {
    const ra0 = a.routing(layers[0]);
    const common = ra0.positions.filter((p) => b.routing(layers[0]).positions.includes(p) && p < n);
    const pick = pickRows(common, rowsFor(layers.length, opts.maxTokens ?? 200));
    pickNote = pick.note;
    rowLabels = pick.positions.map((p) => tokenLabel(a, p));
    for (const p of pick.positions) {
      const zr: number[] = [], hr: string[] = [];
      layers.forEach((l, li) => {
        const ea = a.row(`blocks.${l}.mlp.hook_expert_indices`, p)[0], eb = b.row(`blocks.${l}.mlp.hook_expert_indices`, p)[0];
        const ga = a.row(`blocks.${l}.mlp.hook_expert_weights`, p)[0], gb = b.row(`blocks.${l}.mlp.hook_expert_weights`, p)[0];
        const ch = ea !== eb;
        zr.push(ch ? 1 : r4(Math.min(0.9, Math.abs(gb - ga))));
        hr.push(`${htmlEsc(tokenLabel(a, p))} L${l}<br>${la}: e${ea} (${ga.toFixed(2)})<br>${lb}: e${eb} (${gb.toFixed(2)})${ch ? " changed" : ""}`);
        if (ch) (changed++, perLayer[li]++);
        total++;
      });
      z.push(zr);
      hover.push(hr);
    }
  }
  const width = 940;
  const height = Math.max(380, Math.min(1200, 140 + 15 * Math.max(k, z.length)));
  const fig: Figure = {
    data: [
      { type: "bar", orientation: "h", x: diffs, y: labels, xaxis: "x", yaxis: "y", marker: { color: diffs.map((d) => (d >= 0 ? "#2166ac" : "#b2182b")) },
        hovertext: order.map((i) => `${htmlEsc(tok(i))}<br>${la}: ${xa[i].toFixed(3)} (p ${pa[i].toFixed(3)})<br>${lb}: ${xb[i].toFixed(3)} (p ${pb[i].toFixed(3)})`), hovertemplate: "%{hovertext}<extra></extra>" },
    ],
    layout: baseLayout(width, height, `${lb} vs ${la} at ${tokenLabel(a, pos)}: logit changes and routing changes`, {
      margin: { l: 130, r: 20, t: 60, b: 50 },
      xaxis: { domain: [0, 0.42], title: { text: `logit ${lb} − ${la}` }, zeroline: true },
      yaxis: { autorange: "reversed", anchor: "x", tickfont: { size: 10 }, type: "category" },
      xaxis2: { domain: [0.58, 1], anchor: "y2", title: { text: "MoE layer" }, tickvals: layers.map((_, i) => i), ticktext: layers.map(String), showgrid: false },
      yaxis2: { anchor: "x2", autorange: "reversed", ...tokenTicks(rowLabels, 50), showgrid: false, tickfont: { size: 10 } },
      annotations: [{ text: "red: expert changed · pink: gate moved", x: 0.58, y: 1.0, xref: "paper", yref: "paper", showarrow: false, xanchor: "left", yanchor: "bottom", font: { size: 10 } }],
    }),
  };
  if (z.length) fig.data.push({ type: "heatmap", z, zmin: 0, zmax: 1, colorscale: [[0, "#ffffff"], [0.5, "#f4a6a6"], [0.999, "#f4a6a6"], [1, "#d62728"]], showscale: false, hovertext: hover, hoverinfo: "text", xaxis: "x2", yaxis: "y2", xgap: 1, ygap: z.length > 150 ? 0 : 1 });
  const summary = `${lb} vs ${la} at position ${pos}: KL(${la}‖${lb}) = ${kl.toFixed(4)} nats; top token ${tok(argA)} → ${tok(argB)}; ` +
    (layers.length ? `routing changed for ${changed} of ${total} token-layer pairs (${layers.map((l, i) => `L${l}: ${perLayer[i]}`).join(", ")})` : "no routing captured in both");
  return makeView({ kind: "compare", title: "comparison", figure: fig, svg: figureToSvg(fig), width, height, text: summary, notes: [pickNote, `KL(${la}‖${lb}) = ${kl.toFixed(4)} nats at ${tokenLabel(a, pos)}.`].filter((x): x is string => !!x) });
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** A vocabulary entry's text: from the model when given, else from a position of the trace that holds that id. */
function tokenText(t: Trace, id: number, model?: Model): string {
  if (model) return model.tokenStrings([id])[0];
  const i = t.tokens.indexOf(id);
  return i >= 0 ? t.tokenTexts[i] : `#${id}`;
}

