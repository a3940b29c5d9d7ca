/**
 * The plotly figure subset that views build. Both renderers read exactly this: plotly.js in the
 * browser (the JSON goes out unchanged as application/vnd.plotly.v1+json and inside the HTML) and
 * the SVG/PNG renderer in Node (svg.ts). Keeping the subset small is what lets the static image match
 * the live chart without running plotly.js in Node.
 *
 * Conventions: heatmap and image cells sit at integer coordinates (column i at x = i, row j at y = j);
 * rows run top to bottom (y axes are `autorange: "reversed"`); axis labels come from tickvals/ticktext.
 */
import type { Scale } from "./color";

export interface AxisRef {
  xaxis?: string; // "x", "x2", ...
  yaxis?: string;
}

export interface HeatmapTrace extends AxisRef {
  type: "heatmap";
  z: (number | null)[][];
  colorscale: Scale;
  zmin: number;
  zmax: number;
  /** Per-cell label drawn in the cell (texttemplate "%{text}"), e.g. the logit lens's top tokens. */
  text?: string[][];
  texttemplate?: string;
  hovertext?: string[][];
  hoverinfo?: string;
  hovertemplate?: string;
  customdata?: unknown;
  showscale?: boolean;
  colorbar?: { title?: { text: string }; len?: number; x?: number; xanchor?: "left" | "center" | "right"; y?: number; thickness?: number };
  xgap?: number;
  ygap?: number;
  name?: string;
}

/** Per-cell RGB, for colours a single colour scale cannot express (expert hue × gate intensity). */
export interface ImageTrace extends AxisRef {
  type: "image";
  z: [number, number, number][][];
  colormodel: "rgb";
  hovertext?: string[][];
  hoverinfo?: string;
  hovertemplate?: string;
  name?: string;
}

export interface BarTrace extends AxisRef {
  type: "bar";
  x: (number | string)[];
  y: (number | string)[];
  orientation?: "v" | "h";
  marker?: { color?: string | string[] };
  name?: string;
  hovertext?: string[];
  hovertemplate?: string;
  text?: string[];
  textposition?: "auto" | "outside" | "inside" | "none";
}

export interface ScatterTrace extends AxisRef {
  type: "scatter";
  x: number[];
  y: (number | null)[];
  mode: "lines" | "markers" | "lines+markers";
  name?: string;
  line?: { color?: string; width?: number; dash?: string };
  marker?: { color?: string; size?: number };
  hovertemplate?: string;
}

export type Trace = HeatmapTrace | ImageTrace | BarTrace | ScatterTrace;

export interface Axis {
  domain?: [number, number];
  title?: { text: string };
  tickvals?: number[];
  ticktext?: string[];
  range?: [number, number];
  autorange?: "reversed" | boolean;
  anchor?: string;
  showgrid?: boolean;
  zeroline?: boolean;
  tickangle?: number;
  tickfont?: { size?: number };
  scaleanchor?: string;
  constrain?: string;
  fixedrange?: boolean;
  showticklabels?: boolean;
  automargin?: boolean;
  matches?: string;
  type?: "linear" | "category";
}

export interface Annotation {
  text: string;
  x: number;
  y: number;
  xref: string; // "paper" or an axis ("x2")
  yref: string;
  showarrow: false;
  xanchor?: "left" | "center" | "right";
  yanchor?: "top" | "middle" | "bottom";
  font?: { size?: number; color?: string };
}

export interface Shape {
  type: "line" | "rect";
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  xref: string;
  yref: string;
  line?: { color?: string; width?: number; dash?: "dash" | "dot" | "solid" };
  fillcolor?: string;
}

export interface Layout {
  width: number;
  height: number;
  title?: { text: string; x?: number; font?: { size?: number } };
  margin: { l: number; r: number; t: number; b: number };
  annotations?: Annotation[];
  shapes?: Shape[];
  showlegend?: boolean;
  legend?: { orientation?: "h" | "v"; x?: number; xanchor?: "left" | "right"; y?: number };
  hovermode?: "closest" | false;
  font?: { family?: string; size?: number };
  plot_bgcolor?: string;
  paper_bgcolor?: string;
  barmode?: "group" | "relative";
  clickmode?: string;
  [axis: `xaxis${string}` | `yaxis${string}`]: Axis | undefined;
}

export interface Figure {
  data: Trace[];
  layout: Layout;
  config?: { responsive?: boolean; displaylogo?: boolean; scrollZoom?: boolean };
}

/** Four significant digits: what a chart can show, and a third of the JSON of full floats. */
export function r4(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(4)) : 0;
}

export const FONT = "DejaVu Sans, Arial, sans-serif";

/** A layout with the defaults every view shares. */
export function baseLayout(width: number, height: number, title: string, extra: Partial<Layout> = {}): Layout {
  return {
    width,
    height,
    title: { text: title, x: 0.01, font: { size: 14 } },
    margin: { l: 70, r: 20, t: 50, b: 50 },
    font: { family: FONT, size: 11 },
    hovermode: "closest",
    plot_bgcolor: "#ffffff",
    paper_bgcolor: "#ffffff",
    showlegend: false,
    ...extra,
  };
}

/** "x" for 1, "x2" for 2: plotly's axis ids in traces; layout keys are "xaxis", "xaxis2". */
export function axisId(letter: "x" | "y", n: number): string {
  return n <= 1 ? letter : `${letter}${n}`;
}
export function axisKey(id: string): `xaxis${string}` | `yaxis${string}` {
  return `${id[0]}axis${id.slice(1)}` as `xaxis${string}`;
}

/** Tick labels for a token axis, thinned so at most `max` are shown (labels beyond that overlap). */
export function tokenTicks(labels: string[], max = 64): { tickvals: number[]; ticktext: string[] } {
  const step = Math.max(1, Math.ceil(labels.length / max));
  const tickvals: number[] = [];
  const ticktext: string[] = [];
  for (let i = 0; i < labels.length; i += step) {
    tickvals.push(i);
    ticktext.push(labels[i]);
  }
  return { tickvals, ticktext };
}
