/**
 * Bounding what goes into an output. Views never ship a whole long trace: they pick at most a fixed
 * number of token rows (a range the caller asks for, else an even sample) or pool a matrix into at
 * most a fixed number of bins, and each returns a note that the view prints, so nobody mistakes a
 * sample for the whole. A 10,000-token trace thus gives a view of bounded size.
 */
import type { Trace } from "../../engine/src/trace";
import { visible } from "./png";

export interface PositionRange {
  begin?: number;
  end?: number;
}

export interface Picked {
  /** Indices into the captured rows. */
  rows: number[];
  /** Absolute token positions of those rows. */
  positions: number[];
  note?: string;
}

/**
 * Rows of a captured tensor to show: those inside `range` (absolute positions), thinned to an even
 * sample of `max` when there are more (the last row always kept: it is usually the one of interest).
 */
export function pickRows(captured: number[], max: number, range?: PositionRange): Picked {
  const lo = range?.begin ?? -Infinity, hi = range?.end ?? Infinity;
  const inRange: number[] = [];
  captured.forEach((p, i) => {
    if (p >= lo && p < hi) inRange.push(i);
  });
  if (inRange.length <= max) return { rows: inRange, positions: inRange.map((i) => captured[i]) };
  const rows: number[] = [];
  for (let j = 0; j < max; j++) rows.push(inRange[Math.round((j * (inRange.length - 1)) / (max - 1))]);
  const stride = (inRange.length / max).toFixed(1);
  return {
    rows,
    positions: rows.map((i) => captured[i]),
    note: `Showing ${max} of ${inRange.length} tokens (an even sample, about every ${stride}th); pass positions: { begin, end } to see a range in full.`,
  };
}

/**
 * How many rows a per-cell chart may show: each cell carries a hover string (tens of bytes, twice:
 * in the plotly JSON and in the HTML), so rows × columns is what bounds the output.
 */
export const CELL_BUDGET = 8_000;
export function rowsFor(cols: number, maxRows: number, budget = CELL_BUDGET): number {
  return Math.max(8, Math.min(maxRows, Math.floor(budget / Math.max(1, cols))));
}

/** Pools an [R, C] matrix into at most maxR × maxC bins (mean, or max for sparse maps like attention). */
export function pool(data: ArrayLike<number>, R: number, C: number, maxR: number, maxC: number, how: "mean" | "max" = "mean"): { z: number[][]; fr: number; fc: number } {
  const fr = Math.max(1, Math.ceil(R / maxR)), fc = Math.max(1, Math.ceil(C / maxC));
  const nr = Math.ceil(R / fr), nc = Math.ceil(C / fc);
  const z: number[][] = [];
  for (let i = 0; i < nr; i++) {
    const row = new Array<number>(nc).fill(how === "max" ? -Infinity : 0);
    const cnt = new Array<number>(nc).fill(0);
    for (let r = i * fr; r < Math.min(R, (i + 1) * fr); r++)
      for (let c = 0; c < C; c++) {
        const v = data[r * C + c];
        const j = Math.floor(c / fc);
        if (how === "max") row[j] = Math.max(row[j], v);
        else (row[j] += v), cnt[j]++;
      }
    z.push(row.map((v, j) => (how === "max" ? v : cnt[j] ? v / cnt[j] : 0)));
  }
  return { z, fr, fc };
}

/** "12 'fox'" style labels for axes and tooltips. */
export function tokenLabel(trace: Trace, pos: number, withPos = true): string {
  const t = visible(trace.tokenTexts[pos] ?? "?");
  const s = t.length > 12 ? t.slice(0, 11) + "…" : t;
  return withPos ? `${pos} ${s}` : s;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Shannon entropy in bits of a non-negative vector (normalised here). */
export function entropyBits(p: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += p[i];
  if (s <= 0) return 0;
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) h -= (p[i] / s) * Math.log2(p[i] / s);
  return h;
}

export function softmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  const out = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += out[i] = Math.exp(x[i] - m);
  for (let i = 0; i < x.length; i++) out[i] /= s;
  return out;
}

export function need(trace: Trace, name: string, hint: string): void {
  if (!trace.has(name)) throw new Error(`this view needs ${name} in the trace; run with capture: ${hint}`);
}

export function htmlEsc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * A short fingerprint of a trace's tokens: views of the same run share it, so a token selected in
 * one output can be selected in the others on the page (window event "moescope-select").
 */
export function traceKey(trace: Trace): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < trace.tokens.length; i++) h = Math.imul(h ^ trace.tokens[i], 0x01000193) >>> 0;
  return `${trace.tokens.length}-${h.toString(16)}`;
}
