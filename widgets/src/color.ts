/**
 * Colours shared by every view and by both renderers (plotly in the browser, SVG in Node), so the
 * live chart and its static PNG agree: a categorical palette for experts, a sequential scale for
 * magnitudes, a diverging one for differences, and the blend that turns a gate into intensity.
 */

export type RGB = [number, number, number];

// Tableau-20-like: distinct at a glance for the common case of few experts (tiny fixtures, Scout's 16).
const BASE: string[] = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

export function hexToRgb(hex: string): RGB {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
export function rgbToHex([r, g, b]: RGB): string {
  return "#" + [r, g, b].map((v) => Math.round(Math.max(0, Math.min(255, v))).toString(16).padStart(2, "0")).join("");
}

function hslToRgb(h: number, s: number, l: number): RGB {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return 255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1)));
  };
  return [f(0), f(8), f(4)];
}

/** Expert e's colour: the fixed palette first, then golden-angle hues so 128 experts stay distinguishable-ish. */
export function expertColor(e: number): RGB {
  if (e < 0) return [200, 200, 200];
  if (e < BASE.length) return hexToRgb(BASE[e]);
  return hslToRgb((e * 137.508) % 360, 0.55 + 0.25 * ((e >> 4) % 2), 0.45 + 0.1 * ((e >> 5) % 2));
}

/** Mix towards white: intensity 1 is the full colour, 0 is white (a gate of 0 shows as blank). */
export function tint(c: RGB, intensity: number): RGB {
  const t = Math.max(0, Math.min(1, intensity));
  return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t];
}

export type Scale = [number, string][];
/** Sequential (white → deep blue): attention, norms, load. */
export const SEQ: Scale = [[0, "#ffffff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1, "#08306b"]];
/** Diverging (red ← white → blue): differences between runs. */
export const DIV: Scale = [[0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"], [1, "#2166ac"]];
/** Magma-like: router logits (high is bright). */
export const LOGIT: Scale = [[0, "#000004"], [0.25, "#51127c"], [0.5, "#b73779"], [0.75, "#fc8961"], [1, "#fcfdbf"]];

/** The colour plotly would draw for `t` in [0,1] on `scale` (linear interpolation between stops). */
export function scaleColor(scale: Scale, t: number): RGB {
  const x = Number.isFinite(t) ? Math.max(0, Math.min(1, t)) : 0;
  for (let i = 1; i < scale.length; i++) {
    if (x <= scale[i][0]) {
      const [x0, c0] = scale[i - 1];
      const [x1, c1] = scale[i];
      const f = x1 === x0 ? 0 : (x - x0) / (x1 - x0);
      const a = hexToRgb(c0), b = hexToRgb(c1);
      return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
    }
  }
  return hexToRgb(scale[scale.length - 1][1]);
}

/** Black or white text, whichever reads on `bg`. */
export function textOn(bg: RGB): string {
  return 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 140 ? "#111" : "#fff";
}
