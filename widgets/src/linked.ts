/**
 * The linked view: one HTML output with several panels over the same tokens. Clicking a token (in
 * the text strip or a column of the routing chart) selects it everywhere: the chart outlines its
 * column, the attention panel shows where that token looks, the detail panel lists its experts, gates
 * and top router logits in every MoE layer. No model run and no kernel round trip: everything the
 * panels show is shipped in the output, bounded to a window of at most `maxTokens` tokens (and the
 * per-head attention only when it fits a fixed budget, else the mean over heads).
 */
import type { Trace } from "../../engine/src/trace";
import { expertColor, rgbToHex, SEQ, tint } from "./color";
import { baseLayout, Figure, tokenTicks } from "./figure";
import { expertGateScale, expertGateZ } from "./routing";
import { firstPatternLayer, layerKind } from "./attention";
import { htmlEsc, tokenLabel, traceKey } from "./select";
import { visible } from "./png";
import { figureToSvg } from "./svg";
import { makeView, View } from "./view";

export interface LinkedOptions {
  /** Attention layer shown in the attention panel (default: the first captured) and the layer whose expert tints the text (default: middle MoE layer). */
  layer?: number;
  expertLayer?: number;
  /** Last token of the window (default: the last token); the window is the maxTokens tokens up to it. */
  end?: number;
  maxTokens?: number;
  /** Token selected at first (default: the last in the window). */
  select?: number;
}

const ATTN_BUDGET = 200_000;

export async function linkedView(trace: Trace, opts: LinkedOptions = {}): Promise<View> {
  const layers = trace.moeLayers.filter((l) => trace.has(`blocks.${l}.mlp.hook_expert_indices`));
  if (!layers.length) throw new Error(`linkedView needs the routing hooks; run with capture: ["routing", "blocks.*.attn.hook_pattern"]`);
  const alayer = opts.layer ?? firstPatternLayer(trace);
  const pname = `blocks.${alayer}.attn.hook_pattern`;
  const hasAttn = trace.has(pname);
  const elayer = opts.expertLayer ?? layers[Math.floor(layers.length / 2)];
  const r0 = trace.routing(layers[0]);
  const maxT = opts.maxTokens ?? Math.min(160, Math.max(32, Math.floor(6000 / layers.length)));
  const endPos = Math.min(opts.end ?? r0.positions[r0.positions.length - 1] + 1, r0.positions[r0.positions.length - 1] + 1);
  const win = r0.positions.filter((p) => p < endPos).slice(-maxT);
  const T = win.length;
  const w0 = win[0];
  const notes: string[] = [];
  if (win.length < r0.positions.length) notes.push(`Window: tokens ${w0}..${win[T - 1]} (${T} of ${r0.positions.length}); pass end: N, maxTokens: M to move or widen it.`);

  const routes = layers.map((l) => trace.routing(l));
  const E = trace.info.nExpert;
  const rowOf = (r: { positions: number[] }, p: number) => r.positions.indexOf(p);
  const experts = routes.map((r) => win.map((p) => r.experts[rowOf(r, p) * r.k]));
  const gates = routes.map((r) => win.map((p) => Number(r.gates[rowOf(r, p) * r.k].toFixed(3))));
  const topLogits = routes.map((r) => win.map((p) => {
    if (!r.logits) return [];
    const i = rowOf(r, p);
    const lg = r.logits.subarray(i * E, (i + 1) * E);
    return Array.from({ length: E }, (_, e) => e).sort((a, b) => lg[b] - lg[a]).slice(0, 3).map((e) => [e, Number(lg[e].toFixed(3))]);
  }));

  // Attention rows for queries in the window over keys in the window (triangular: a row has q+1 keys).
  const attn: Record<string, number[][]> = {};
  if (hasAttn) {
    const t = trace.get(pname);
    const [H, rows, S] = t.shape;
    const tri = (T * (T + 1)) / 2;
    const perHead = (H + 1) * tri <= ATTN_BUDGET;
    if (!perHead) notes.push(`Attention panel: mean over heads only (per-head rows for ${T} tokens would exceed the output budget).`);
    const d = t.data as Float32Array;
    const heads = perHead ? Array.from({ length: H }, (_, h) => h) : [];
    const qRow = win.map((p) => t.positions.indexOf(p));
    const rowFor = (hs: number[]) => win.map((p, qi) => {
      const i = qRow[qi];
      if (i < 0) return [];
      return win.slice(0, qi + 1).map((k) => {
        let s = 0;
        for (const h of hs) s += d[h * rows * S + i * S + k];
        return Number((s / hs.length).toFixed(3));
      });
    });
    attn.mean = rowFor(Array.from({ length: H }, (_, h) => h));
    for (const h of heads) attn[`head ${h}`] = rowFor([h]);
  } else notes.push(`No attention pattern for layer ${alayer} in the trace; capture "blocks.*.attn.hook_pattern" to fill the attention panel.`);

  notes.push("The chart needs plotly.js on the page: if it stays a static image (JupyterLab with the plotly extension, VS Code), show plotlyInit() once; the text panels work either way.");
  const sel = Math.max(0, win.indexOf(opts.select ?? win[T - 1]));
  const labels = win.map((p) => tokenLabel(trace, p));
  const z = layers.map((_, li) => win.map((_, ti) => expertGateZ(experts[li][ti], gates[li][ti])));
  const hover = layers.map((l, li) => win.map((_, ti) => `${htmlEsc(labels[ti])}<br>L${l}: e${experts[li][ti]} (${gates[li][ti]})`));
  const width = Math.min(1200, Math.max(600, 120 + 12 * T));
  const height = Math.max(220, 130 + 22 * layers.length);
  const fig: Figure = {
    data: [{ type: "heatmap", z, zmin: 0, zmax: E, colorscale: expertGateScale(E), showscale: false, hovertext: hover, hoverinfo: "text", xgap: 1, ygap: 1 }],
    layout: baseLayout(width, height, `Routing (click a token to select it in every panel)`, {
      margin: { l: 60, r: 20, t: 40, b: 90 },
      xaxis: { ...tokenTicks(labels, 60), tickangle: -60, showgrid: false },
      yaxis: { autorange: "reversed", title: { text: "MoE layer" }, tickvals: layers.map((_, i) => i), ticktext: layers.map(String), showgrid: false },
      shapes: [{ type: "rect", x0: sel - 0.5, x1: sel + 0.5, y0: -0.5, y1: layers.length - 0.5, xref: "x", yref: "y", line: { color: "#111", width: 2 } }],
    }),
  };
  const li = layers.indexOf(elayer);
  const strip = win.map((p, ti) => {
    const bg = li >= 0 ? rgbToHex(tint(expertColor(experts[li][ti]), 0.25 + 0.75 * gates[li][ti])) : "#eee";
    return `<span class="moescope-tok ms-tok${ti === sel ? " sel" : ""}" data-i="${ti}" style="background:${bg};cursor:pointer" title="${htmlEsc(tokenLabel(trace, p))}">${htmlEsc(visible(trace.tokenTexts[p] ?? ""))}</span>`;
  }).join("");
  const attnOpts = Object.keys(attn).map((k) => `<option value="${k}">${k}</option>`).join("");
  const body = `<div class="ms-linked" style="max-width:${width}px">` +
    `<div style="font-size:12px;color:#444;margin:4px 0">Text (tint = expert at layer ${elayer}); click a token:</div><div class="ms-strip" style="line-height:1.9">${strip}</div>` +
    `<div style="display:flex;gap:16px;flex-wrap:wrap;margin-top:8px">` +
    `<div style="flex:2;min-width:320px"><div style="font-size:12px;color:#444">Attention from the selected token, layer ${alayer} (${htmlEsc(layerKind(trace, alayer))}) ${attnOpts ? `<select class="ms-head">${attnOpts}</select>` : ""}</div><div class="ms-attn" style="line-height:1.9">(select a token; needs a trusted notebook)</div></div>` +
    `<div style="flex:1;min-width:260px"><div style="font-size:12px;color:#444">Routing of the selected token</div><div class="ms-detail" style="font-family:'DejaVu Sans Mono',monospace;font-size:11px"></div></div>` +
    `</div></div>`;
  const data = { key: traceKey(trace), positions: win, labels, texts: win.map((p) => visible(trace.tokenTexts[p] ?? "")), layers, experts, gates, topLogits, attn, sel, seq: SEQ,
    palette: Object.fromEntries([...new Set(experts.flat())].map((e) => [e, rgbToHex(expertColor(e))])) };
  const script = `
var sel=data.sel, strip=root.querySelectorAll(".ms-tok"), headSel=root.querySelector(".ms-head");
function hex(h){var n=parseInt(h.slice(1),16);return[(n>>16)&255,(n>>8)&255,n&255]}
function seq(t){var s=data.seq;t=Math.max(0,Math.min(1,t));for(var i=1;i<s.length;i++){if(t<=s[i][0]){var a=hex(s[i-1][1]),b=hex(s[i][1]),f=(t-s[i-1][0])/(s[i][0]-s[i-1][0]);return"rgb("+[0,1,2].map(function(j){return Math.round(a[j]+(b[j]-a[j])*f)}).join(",")+")"}}return s[s.length-1][1]}
function esc(s){return String(s).replace(/&/g,"&amp;").replace(/</g,"&lt;")}
function select(i){
  if(!(i>=0&&i<data.labels.length))return; sel=i;
  strip.forEach(function(s){s.classList.toggle("sel",+s.getAttribute("data-i")===i)});
  var box=root.querySelector(".ms-attn"), key=headSel?headSel.value:null, row=key&&data.attn[key]?data.attn[key][i]:null;
  if(row&&row.length){var mx=Math.max.apply(null,row)||1;box.innerHTML=row.map(function(w,k){return'<span class="moescope-tok'+(k===i?' sel':'')+'" style="background:'+seq(0.85*w/mx)+';color:'+(w/mx>0.55?'#fff':'#111')+'" title="'+esc(data.labels[k])+': '+w+'">'+esc(data.texts[k])+'</span>'}).join("")}
  else box.textContent=key?"(this token's attention row was not captured)":"(no attention captured)";
  root.querySelector(".ms-detail").innerHTML="<b>"+esc(data.labels[i])+"</b><br>"+data.layers.map(function(l,li){var e=data.experts[li][i];return'<span style="color:'+data.palette[e]+'">&#9632;</span> L'+l+': e'+e+' gate '+data.gates[li][i]+(data.topLogits[li][i].length?' | top: '+data.topLogits[li][i].map(function(x){return"e"+x[0]+" "+x[1]}).join(", "):"")}).join("<br>");
  if(plotEl&&Plotly&&plotEl.layout)Plotly.relayout(plotEl,{shapes:[{type:"rect",x0:i-0.5,x1:i+0.5,y0:-0.5,y1:data.layers.length-0.5,xref:"x",yref:"y",line:{color:"#111",width:2}}]});
  root.setAttribute("data-moescope-selected",String(i));
}
// A user's click selects here and tells other views of the same run; selections from elsewhere only select here.
function pick(i){select(i);window.dispatchEvent(new CustomEvent("moescope-select",{detail:{key:data.key,pos:data.positions[i],from:root.id}}))}
strip.forEach(function(s){s.addEventListener("click",function(){pick(+s.getAttribute("data-i"))})});
if(headSel)headSel.addEventListener("change",function(){select(sel)});
if(plotEl&&plotEl.on)plotEl.on("plotly_click",function(ev){if(ev&&ev.points&&ev.points.length)pick(Math.round(ev.points[0].x))});
window.addEventListener("moescope-select",function(ev){var d=ev.detail||{};if(d.key!==data.key||d.from===root.id)return;var i=data.positions.indexOf(d.pos);if(i>=0)select(i)});
select(sel);`;
  return makeView({ kind: "linked", title: "linked view", figure: fig, body, script, data, plotlyMime: false, svg: figureToSvg(fig), width, height,
    text: `linked view: ${T} tokens, ${layers.length} MoE layers, attention layer ${alayer}${Object.keys(attn).length ? ` (${Object.keys(attn).join(", ")})` : ""}`, notes });
}
