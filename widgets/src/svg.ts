/**
 * Draws a Figure (the plotly subset in figure.ts) as SVG, in Node, without plotly.js (which cannot
 * run outside a browser). It is the static twin of the live chart: same colours, same cell layout,
 * same titles and labels; hover, zoom and colour bars are left to the browser. png.ts rasterises it.
 *
 * Heatmap and image traces are drawn as one embedded raster (nearest-neighbour upscaled here, so no
 * renderer can blur the cells); bars, lines, text, shapes and axes as SVG elements.
 */
import { RGB, scaleColor, textOn } from "./color";
import type { Axis, BarTrace, Figure, HeatmapTrace, ImageTrace, Layout, ScatterTrace, Trace } from "./figure";
import { axisKey } from "./figure";
import { encodePngRgb } from "./pngenc";

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Plotly titles may carry <b>/<br>; the SVG shows the plain text. */
function plain(s: string): string {
  return s.replace(/<br\s*\/?>/gi, " · ").replace(/<[^>]+>/g, "");
}

interface Frame {
  x0: number; // pixel rectangle of the plot area
  y0: number;
  w: number;
  h: number;
  xr: [number, number]; // data range, left to right
  yr: [number, number]; // data range, top to bottom (reversed axes have yr[0] < yr[1])
  xcat?: string[];
  ycat?: string[];
}

function dataExtent(traces: Trace[], letter: "x" | "y"): { range: [number, number]; cats?: string[]; reversed: boolean } {
  let lo = Infinity, hi = -Infinity;
  let cats: string[] | undefined;
  let grid = false;
  for (const t of traces) {
    if (t.type === "heatmap" || t.type === "image") {
      grid = true;
      const n = letter === "x" ? (t.z[0]?.length ?? 0) : t.z.length;
      lo = Math.min(lo, -0.5);
      hi = Math.max(hi, n - 0.5);
    } else {
      const vals = (letter === "x" ? t.x : t.y) as (number | string | null)[];
      for (const v of vals) {
        if (typeof v === "string") {
          cats = cats ?? [];
          if (!cats.includes(v)) cats.push(v);
        } else if (v !== null && Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
      if (t.type === "bar" && ((t.orientation ?? "v") === "v") === (letter === "y")) {
        lo = Math.min(lo, 0);
        hi = Math.max(hi, 0);
      }
    }
  }
  if (cats) return { range: [-0.5, cats.length - 0.5], cats, reversed: false };
  if (!Number.isFinite(lo)) (lo = 0), (hi = 1);
  if (lo === hi) (lo -= 0.5), (hi += 0.5);
  if (!grid) {
    const pad = (hi - lo) * 0.05;
    const barBase = traces.some((t) => t.type === "bar");
    lo = barBase && lo === 0 ? 0 : lo - pad;
    hi = barBase && hi === 0 ? 0 : hi + pad;
  }
  return { range: [lo, hi], reversed: grid && letter === "y" };
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo;
  const step0 = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}

function fmtTick(v: number): string {
  if (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** Nearest-neighbour raster of a heatmap or image trace at the frame's pixel size. */
function rasterCells(t: HeatmapTrace | ImageTrace, w: number, h: number): Buffer {
  const rows = t.z.length, cols = t.z[0]?.length ?? 0;
  const cell: RGB[][] = t.z.map((row) =>
    (row as unknown[]).map((v) => {
      if (t.type === "image") return v as RGB;
      if (v === null || !Number.isFinite(v as number)) return [255, 255, 255] as RGB;
      const span = t.zmax - t.zmin || 1;
      return scaleColor(t.colorscale, ((v as number) - t.zmin) / span);
    }),
  );
  const W = Math.max(1, Math.round(w)), H = Math.max(1, Math.round(h));
  const px = new Uint8Array(W * H * 3);
  const gapX = (t as HeatmapTrace).xgap ?? 0, gapY = (t as HeatmapTrace).ygap ?? 0;
  for (let y = 0; y < H; y++) {
    const fy = (y + 0.5) * rows / H;
    const r = Math.min(rows - 1, Math.floor(fy));
    const inGapY = gapY > 0 && (fy - r) * (H / rows) < gapY;
    for (let x = 0; x < W; x++) {
      const fx = (x + 0.5) * cols / W;
      const c = Math.min(cols - 1, Math.floor(fx));
      const inGap = inGapY || (gapX > 0 && (fx - c) * (W / cols) < gapX);
      const col = inGap ? [255, 255, 255] : cell[r][c];
      const o = (y * W + x) * 3;
      px[o] = col[0];
      px[o + 1] = col[1];
      px[o + 2] = col[2];
    }
  }
  return encodePngRgb(W, H, px);
}

export function figureToSvg(fig: Figure): string {
  const L: Layout = fig.layout;
  const W = L.width, H = L.height;
  const m = L.margin;
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const out: string[] = [];
  const font = L.font?.family ?? "DejaVu Sans, sans-serif";
  const fs = L.font?.size ?? 11;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${esc(font)}" font-size="${fs}">`);
  out.push(`<rect width="${W}" height="${H}" fill="${L.paper_bgcolor ?? "#fff"}"/>`);
  if (L.title?.text) {
    // Shrink a long title to fit rather than clip it (plotly clips too, but the live chart can be widened).
    const t = plain(L.title.text);
    const size = Math.max(8, Math.min(L.title.font?.size ?? 14, (W - 16) / (t.length * 0.62)));
    out.push(`<text x="8" y="22" font-size="${size.toFixed(1)}" font-weight="bold" fill="#222">${esc(t)}</text>`);
  }

  // Group traces by their axis pair; each pair is one frame.
  const pairs = new Map<string, Trace[]>();
  for (const t of fig.data) {
    const k = `${t.xaxis ?? "x"}|${t.yaxis ?? "y"}`;
    pairs.set(k, [...(pairs.get(k) ?? []), t]);
  }
  const frames = new Map<string, Frame>();
  for (const [k, traces] of pairs) {
    const [xa, ya] = k.split("|");
    const ax: Axis = L[axisKey(xa)] ?? {};
    const ay: Axis = L[axisKey(ya)] ?? {};
    const xd = ax.domain ?? [0, 1], yd = ay.domain ?? [0, 1];
    const ex = dataExtent(traces, "x"), ey = dataExtent(traces, "y");
    let xr = ax.range ?? ex.range;
    let yr: [number, number] = ay.range ? [ay.range[1], ay.range[0]] : [ey.range[1], ey.range[0]];
    if (ay.autorange === "reversed" || ey.reversed) yr = [Math.min(...yr), Math.max(...yr)];
    if (ax.autorange === "reversed") xr = [xr[1], xr[0]];
    const f: Frame = { x0: m.l + xd[0] * pw, y0: m.t + (1 - yd[1]) * ph, w: (xd[1] - xd[0]) * pw, h: (yd[1] - yd[0]) * ph, xr, yr, xcat: ex.cats, ycat: ey.cats };
    frames.set(xa, f);
    frames.set(ya, f);
    const X = (v: number) => f.x0 + ((v - f.xr[0]) / (f.xr[1] - f.xr[0])) * f.w;
    const Y = (v: number) => f.y0 + ((v - f.yr[0]) / (f.yr[1] - f.yr[0])) * f.h;
    const xv = (v: number | string) => (typeof v === "string" ? f.xcat!.indexOf(v) : v);
    const yv = (v: number | string | null) => (typeof v === "string" ? f.ycat!.indexOf(v) : (v ?? NaN));

    out.push(`<rect x="${f.x0}" y="${f.y0}" width="${f.w}" height="${f.h}" fill="${L.plot_bgcolor ?? "#fff"}" stroke="#ddd"/>`);
    for (const t of traces) {
      if (t.type === "heatmap" || t.type === "image") {
        const rows = t.z.length, cols = t.z[0]?.length ?? 0;
        if (!rows || !cols) continue;
        const left = X(-0.5), right = X(cols - 0.5), top = Y(-0.5), bottom = Y(rows - 0.5);
        const x = Math.min(left, right), y = Math.min(top, bottom), w = Math.abs(right - left), h = Math.abs(bottom - top);
        const png = rasterCells(t, w, h);
        out.push(`<image x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.round(w)}" height="${Math.round(h)}" preserveAspectRatio="none" xlink:href="data:image/png;base64,${png.toString("base64")}"/>`);
        if (t.type === "heatmap" && t.text) {
          const cw = w / cols, ch = h / rows;
          const size = Math.min(11, ch * 0.7);
          if (size >= 6) {
            for (let r = 0; r < rows; r++)
              for (let c = 0; c < cols; c++) {
                const s = t.text[r]?.[c];
                if (!s) continue;
                const v = t.z[r][c];
                const bg = v === null ? ([255, 255, 255] as RGB) : scaleColor(t.colorscale, (v - t.zmin) / (t.zmax - t.zmin || 1));
                const maxChars = Math.max(1, Math.floor(cw / (size * 0.6)));
                out.push(`<text x="${(X(c)).toFixed(1)}" y="${(Y(r) + size * 0.35).toFixed(1)}" font-size="${size.toFixed(1)}" text-anchor="middle" fill="${textOn(bg)}">${esc(s.length > maxChars ? s.slice(0, maxChars - 1) + "…" : s)}</text>`);
              }
          }
        }
      } else if (t.type === "bar") {
        const horiz = t.orientation === "h";
        const n = t.x.length;
        for (let i = 0; i < n; i++) {
          const color = Array.isArray(t.marker?.color) ? t.marker!.color[i] : (t.marker?.color ?? "#4e79a7");
          if (horiz) {
            const v = t.x[i] as number, c = yv(t.y[i]);
            const a = X(0), b = X(v);
            const bh = (Math.abs(Y(c + 0.4) - Y(c - 0.4)));
            out.push(`<rect x="${Math.min(a, b).toFixed(1)}" y="${(Y(c) - bh / 2).toFixed(1)}" width="${Math.abs(b - a).toFixed(1)}" height="${bh.toFixed(1)}" fill="${color}"/>`);
          } else {
            const c = xv(t.x[i]), v = t.y[i] as number;
            const a = Y(0), b = Y(v);
            const bw = Math.abs(X(c + 0.4) - X(c - 0.4));
            out.push(`<rect x="${(X(c) - bw / 2).toFixed(1)}" y="${Math.min(a, b).toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.abs(b - a).toFixed(1)}" fill="${color}"/>`);
          }
        }
      } else if (t.type === "scatter") {
        const pts = t.x.map((x, i) => [X(x), Y(t.y[i] ?? NaN)]).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
        const color = t.line?.color ?? t.marker?.color ?? "#4e79a7";
        if (t.mode.includes("lines") && pts.length > 1)
          out.push(`<polyline fill="none" stroke="${color}" stroke-width="${t.line?.width ?? 2}" ${t.line?.dash ? `stroke-dasharray="4,3"` : ""} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ")}"/>`);
        if (t.mode.includes("markers")) for (const [a, b] of pts) out.push(`<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="${(t.marker?.size ?? 6) / 2}" fill="${color}"/>`);
      }
    }
    drawAxes(out, f, ax, ay, X, Y, fs);
  }

  for (const s of L.shapes ?? []) {
    const fx = frames.get(s.xref), fy = frames.get(s.yref);
    const px = (v: number) => (fx ? fx.x0 + ((v - fx.xr[0]) / (fx.xr[1] - fx.xr[0])) * fx.w : m.l + v * pw);
    const py = (v: number) => (fy ? fy.y0 + ((v - fy.yr[0]) / (fy.yr[1] - fy.yr[0])) * fy.h : m.t + (1 - v) * ph);
    const st = `stroke="${s.line?.color ?? "#333"}" stroke-width="${s.line?.width ?? 1}"${s.line?.dash && s.line.dash !== "solid" ? ` stroke-dasharray="4,3"` : ""}`;
    if (s.type === "line") out.push(`<line x1="${px(s.x0).toFixed(1)}" y1="${py(s.y0).toFixed(1)}" x2="${px(s.x1).toFixed(1)}" y2="${py(s.y1).toFixed(1)}" ${st}/>`);
    else out.push(`<rect x="${Math.min(px(s.x0), px(s.x1)).toFixed(1)}" y="${Math.min(py(s.y0), py(s.y1)).toFixed(1)}" width="${Math.abs(px(s.x1) - px(s.x0)).toFixed(1)}" height="${Math.abs(py(s.y1) - py(s.y0)).toFixed(1)}" fill="${s.fillcolor ?? "none"}" ${st}/>`);
  }
  for (const a of L.annotations ?? []) {
    const fx = frames.get(a.xref), fy = frames.get(a.yref);
    const x = fx ? fx.x0 + ((a.x - fx.xr[0]) / (fx.xr[1] - fx.xr[0])) * fx.w : m.l + a.x * pw;
    const y = fy ? fy.y0 + ((a.y - fy.yr[0]) / (fy.yr[1] - fy.yr[0])) * fy.h : m.t + (1 - a.y) * ph;
    const anchor = a.xanchor === "left" ? "start" : a.xanchor === "right" ? "end" : "middle";
    const dy = a.yanchor === "bottom" ? -3 : a.yanchor === "top" ? (a.font?.size ?? fs) : (a.font?.size ?? fs) * 0.35;
    out.push(`<text x="${x.toFixed(1)}" y="${(y + dy).toFixed(1)}" text-anchor="${anchor}" font-size="${a.font?.size ?? fs}" fill="${a.font?.color ?? "#333"}">${esc(plain(a.text))}</text>`);
  }
  if (L.showlegend) {
    const named = fig.data.filter((t): t is ScatterTrace | BarTrace => !!t.name && (t.type === "scatter" || t.type === "bar"));
    named.forEach((t, i) => {
      const color = t.type === "scatter" ? (t.line?.color ?? t.marker?.color ?? "#4e79a7") : (typeof t.marker?.color === "string" ? t.marker.color : "#4e79a7");
      // Below the plot when the layout puts plotly's legend there, else top right.
      const below = (L.legend?.y ?? 1) < 0;
      const x = below ? m.l + (L.legend?.x ?? 0) * pw - (L.legend?.xanchor === "right" ? 230 : 0) : W - m.r - 170, y = below ? H - m.b + 48 + i * 15 : m.t + 6 + i * 15;
      out.push(`<rect x="${x}" y="${y - 8}" width="12" height="8" fill="${color}"/><text x="${x + 16}" y="${y}" font-size="${fs}" fill="#333">${esc(t.name!)}</text>`);
    });
  }
  out.push("</svg>");
  return out.join("\n");
}

function drawAxes(out: string[], f: Frame, ax: Axis, ay: Axis, X: (v: number) => number, Y: (v: number) => number, fs: number): void {
  const xt = ax.tickvals ? ax.tickvals.map((v, i) => [v, ax.ticktext?.[i] ?? fmtTick(v)] as const) : f.xcat ? f.xcat.map((c, i) => [i, c] as const) : niceTicks(Math.min(...f.xr), Math.max(...f.xr)).map((v) => [v, fmtTick(v)] as const);
  const yt = ay.tickvals ? ay.tickvals.map((v, i) => [v, ay.ticktext?.[i] ?? fmtTick(v)] as const) : f.ycat ? f.ycat.map((c, i) => [i, c] as const) : niceTicks(Math.min(...f.yr), Math.max(...f.yr)).map((v) => [v, fmtTick(v)] as const);
  const tf = ax.tickfont?.size ?? fs - 1;
  const bottom = f.y0 + f.h;
  if (ax.showticklabels !== false)
    for (const [v, label] of xt) {
      const x = X(v);
      if (x < f.x0 - 1 || x > f.x0 + f.w + 1) continue;
      const rot = ax.tickangle ?? 0;
      const s = label.length > 14 ? label.slice(0, 13) + "…" : label;
      out.push(rot ? `<text transform="translate(${x.toFixed(1)},${bottom + 10}) rotate(${rot})" text-anchor="end" font-size="${tf}" fill="#444">${esc(s)}</text>` : `<text x="${x.toFixed(1)}" y="${bottom + 13}" text-anchor="middle" font-size="${tf}" fill="#444">${esc(s)}</text>`);
    }
  const ytf = ay.tickfont?.size ?? fs - 1;
  if (ay.showticklabels !== false)
    for (const [v, label] of yt) {
      const y = Y(v);
      if (y < f.y0 - 1 || y > bottom + 1) continue;
      const s = label.length > 14 ? label.slice(0, 13) + "…" : label;
      out.push(`<text x="${f.x0 - 4}" y="${(y + ytf * 0.35).toFixed(1)}" text-anchor="end" font-size="${ytf}" fill="#444">${esc(s)}</text>`);
    }
  if (ax.title?.text) out.push(`<text x="${f.x0 + f.w / 2}" y="${bottom + ((ax.tickangle ?? 0) ? 46 : 30)}" text-anchor="middle" font-size="${fs}" fill="#333">${esc(plain(ax.title.text))}</text>`);
  if (ay.title?.text) out.push(`<text transform="translate(${f.x0 - 52},${f.y0 + f.h / 2}) rotate(-90)" text-anchor="middle" font-size="${fs}" fill="#333">${esc(plain(ay.title.text))}</text>`);
}
