/**
 * View: what every view function returns. It is displayable (the moescope display protocol) and
 * emits one MIME bundle that renders everywhere:
 *   application/vnd.plotly.v1+json  JupyterLab/Notebook 7 with the plotly extension, VS Code
 *   text/html                       classic Notebook 6, JupyterLab without the extension, nbconvert
 *                                   HTML: a static <img> that a script replaces with the live chart
 *                                   (plotly.js inlined once per page, see plotly-source.ts)
 *   image/png                       PDF/LaTeX export, and anything that shows no HTML
 *   text/plain                      a short summary
 * The PNG is rendered when the view is made (sharp is asynchronous, display is not), so view
 * functions are `async`; the HTML is assembled when displayed, so only the first view shown in a
 * kernel carries plotly.js.
 */
import { randomUUID } from "crypto";
import { MIMEBUNDLE, MimeBundle } from "../../engine/src/display";
import type { Figure } from "./figure";
import { plotlyOnce } from "./plotly-source";
import { svgToPng } from "./png";
import { esc, figureToSvg } from "./svg";

export interface ViewSpec {
  /** Which view made it ("routing-grid", ...): tests and the browser check key on it. */
  kind: string;
  title: string;
  /** The live chart; absent for views that are HTML only (tinted text). */
  figure?: Figure;
  /** HTML shown instead of (text views) or under (linked panels) the chart; must not need scripts to be readable. */
  body?: string;
  /** The static picture's source and size. */
  svg: string;
  width: number;
  height: number;
  text: string;
  /** What was left out or aggregated to keep the output bounded; shown under the view. */
  notes?: string[];
  /**
   * Extra script run once the chart is drawn (gets `root`, `data`, `Plotly`, `plotEl`; the last two are
   * undefined/null when plotly.js never came and the view has panels that work without it).
   */
  script?: string;
  /** JSON the script reads (already bounded by the view). */
  data?: unknown;
  /** Whether to emit application/vnd.plotly.v1+json (false for linked views, whose HTML is the point). */
  plotlyMime?: boolean;
}

/** JSON that can sit inside <script> without ending it. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

const STYLE = `<style>.moescope-view{font-family:"DejaVu Sans",Arial,sans-serif;margin:4px 0}.moescope-notes{color:#666;font-size:11px;margin-top:2px}` +
  `.moescope-tok{font-family:"DejaVu Sans Mono",monospace;white-space:pre;border-radius:3px;padding:1px 2px;margin:1px;display:inline-block;cursor:default}` +
  `.moescope-tok.sel{outline:2px solid #111}.moescope-tok small{display:block;font-size:9px;color:#555;text-align:center}</style>`;

export class View {
  readonly notes: string[];
  constructor(readonly spec: ViewSpec, readonly png: Buffer) {
    this.notes = spec.notes ?? [];
  }
  get kind(): string {
    return this.spec.kind;
  }
  get figure(): Figure | undefined {
    return this.spec.figure;
  }

  /** The HTML fragment (without plotly.js; `html(true)` adds it). */
  html(withLibrary = false): string {
    const s = this.spec;
    const id = "moescope-" + randomUUID().slice(0, 12);
    const img = `<img src="data:image/png;base64,${this.png.toString("base64")}" width="${s.width}" height="${s.height}" alt="${esc(s.title)} (static image; the interactive chart needs the notebook to be trusted)" style="max-width:100%;height:auto"/>`;
    const parts: string[] = [];
    if (withLibrary) parts.push(plotlyOnce());
    parts.push(STYLE);
    parts.push(`<div class="moescope-view" id="${id}" data-moescope-kind="${esc(s.kind)}">`);
    if (s.figure) parts.push(`<div class="moescope-plot" style="width:${s.figure.layout.width}px;max-width:100%;min-height:${s.figure.layout.height}px">${img}</div>`);
    if (s.body) parts.push(s.body);
    if (!s.figure && !s.body) parts.push(img);
    if (this.notes.length && !s.figure) parts.push(`<div class="moescope-notes">${this.notes.map(esc).join("<br/>")}</div>`);
    parts.push(`</div>`);
    if (s.figure) parts.push(`<script type="application/json" class="moescope-fig">${scriptJson(s.figure)}</script>`);
    if (s.data !== undefined) parts.push(`<script type="application/json" class="moescope-data">${scriptJson(s.data)}</script>`);
    if (s.figure || s.script) {
      // Scripts find their view by id; the JSON lives in sibling script tags so it is never parsed as code.
      parts.push(`<script type="text/javascript">(function(){var root=document.getElementById(${JSON.stringify(id)});if(!root)return;` +
        `function sib(c){var n=root.nextElementSibling;while(n&&n.tagName==="SCRIPT"){if(n.classList.contains(c))return JSON.parse(n.textContent);n=n.nextElementSibling}return null}` +
        `var fig=sib("moescope-fig"),data=sib("moescope-data");` +
        // state: 0 nothing yet, 1 panels ran without plotly (it never came), 2 chart drawn.
        `var state=0;function panels(plotEl,Plotly){${s.script ?? ""}}` +
        `function draw(){if(state===2)return;var el=root.querySelector(".moescope-plot"),done=Promise.resolve();` +
        (s.figure ? `el.replaceChildren();el.style.minHeight="";done=window.Plotly.newPlot(el,fig.data,fig.layout,Object.assign({displaylogo:false,responsive:false},fig.config||{}));` : "") +
        `done.then(function(){if(el)el.setAttribute("data-moescope-rendered","1");var first=state===0;state=2;if(first)panels(el,window.Plotly)})}` +
        // Panels that work without a chart (linked views) start anyway when plotly.js is not on the page
        // (a frontend that rendered the first view from its plotly MIME type never ran our HTML).
        (s.script ? `setTimeout(function(){if(state===0&&!window.Plotly){state=1;panels(null,undefined)}},1500);` : "") +
        // Say why the chart is static when the output that carried plotly.js is gone (e.g. its cell was re-run).
        (s.figure ? `setTimeout(function(){if(state!==2&&!window.Plotly){var n=document.createElement("div");n.className="moescope-notes";n.textContent="Static image: plotly.js is not on this page (the output that carried it was cleared or not rendered as HTML). Show plotlyInit() in a cell above, or restart and run all.";root.appendChild(n)}},3000);` : "") +
        `(window.__moescopeQ=window.__moescopeQ||[]).push(draw);})();</script>`);
    }
    return parts.join("");
  }

  [MIMEBUNDLE](): MimeBundle {
    const s = this.spec;
    const data: Record<string, unknown> = {};
    if (s.figure && s.plotlyMime !== false) data["application/vnd.plotly.v1+json"] = { data: s.figure.data, layout: s.figure.layout, config: { displaylogo: false, ...(s.figure.config ?? {}) } };
    data["text/html"] = this.html(!!(s.figure || s.script));
    data["image/png"] = this.png.toString("base64");
    data["text/plain"] = s.text + (this.notes.length ? "\n" + this.notes.join("\n") : "");
    return { data, metadata: { "image/png": { width: s.width, height: s.height } } };
  }

  toString(): string {
    return this.spec.text;
  }
}

/** Splits a note into lines of at most `n` characters at spaces. */
function wrap(text: string, n: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const w of text.split(" ")) {
    if (line && line.length + 1 + w.length > n) (out.push(line), (line = w));
    else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
}

export async function makeView(spec: ViewSpec): Promise<View> {
  const fig = spec.figure;
  if (fig) {
    const L = fig.layout;
    // plotly draws a zero line at x = 0 by default, which on a heat map runs through the first column.
    for (const [k, ax] of Object.entries(L))
      if (/^[xy]axis\d*$/.test(k) && ax && typeof ax === "object" && (ax as { zeroline?: boolean }).zeroline === undefined) (ax as { zeroline?: boolean }).zeroline = false;
    // Notes go inside the figure, under the plot: frontends that render the plotly JSON (JupyterLab's
    // extension, VS Code) never show the HTML, and the PNG should say what it left out too.
    const lines = (spec.notes ?? []).flatMap((n) => wrap(n, Math.floor(L.width / 6.2)));
    if (lines.length) {
      const extra = 15 * lines.length + 6;
      L.height += extra;
      L.margin = { ...L.margin, b: L.margin.b + extra };
      const ph = L.height - L.margin.t - L.margin.b;
      const pw = L.width - L.margin.l - L.margin.r;
      L.annotations = [...(L.annotations ?? []), ...lines.map((text, i) => ({
        text, x: -L.margin.l / pw + 0.01, y: -(L.margin.b - extra + 4 + 15 * i) / ph, xref: "paper", yref: "paper", showarrow: false as const,
        xanchor: "left" as const, yanchor: "top" as const, font: { size: 10, color: "#666" },
      }))];
    }
    spec = { ...spec, width: L.width, height: L.height, svg: lines.length ? figureToSvg(fig) : spec.svg };
  }
  return new View(spec, await svgToPng(spec.svg));
}
