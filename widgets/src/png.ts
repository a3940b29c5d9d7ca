/**
 * SVG → PNG in Node with sharp (librsvg underneath): the image/png of every bundle and the static
 * picture inside its HTML. Fonts come from fontconfig (DejaVu on Debian); without fonts the image
 * still renders, only the text is missing.
 */
import { esc } from "./svg";
import { RGB, rgbToHex, textOn } from "./color";

// sharp is loaded on first use so that importing moescope stays cheap for code that never draws.
// Typed by hand: sharp's CJS typings do not resolve under this project's "node" module resolution.
type Sharp = (input: Buffer, opts?: { density?: number }) => { png(o: object): { toBuffer(): Promise<Buffer> } };
let sharpMod: Sharp | undefined;
function sharp(): Sharp {
  sharpMod = sharpMod ?? (require("sharp") as Sharp);
  return sharpMod;
}

export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp()(Buffer.from(svg), { density: 72 }).png({ compressionLevel: 9, palette: true, quality: 90, colors: 256 }).toBuffer();
}

export interface TextToken {
  text: string;
  bg: RGB;
  /** A small label under the token (e.g. "e3"), drawn when present. */
  sub?: string;
  outline?: boolean;
}

/** Tokens as tinted boxes wrapped into lines: the static twin of the HTML token views. */
export function tokensSvg(title: string, tokens: TextToken[], width: number, notes: string[] = []): { svg: string; height: number } {
  const fs = 13, pad = 8, lineH = tokens.some((t) => t.sub) ? 34 : 22;
  const items: string[] = [];
  let x = pad, y = 34;
  for (const t of tokens) {
    const label = visible(t.text);
    const w = Math.max(10, label.length * fs * 0.62 + 6, t.sub ? t.sub.length * 9 * 0.62 + 6 : 0);
    if (x + w > width - pad) (x = pad), (y += lineH);
    items.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${fs + 6}" rx="3" fill="${rgbToHex(t.bg)}"${t.outline ? ` stroke="#111" stroke-width="2"` : ""}/>`);
    items.push(`<text x="${(x + 3).toFixed(1)}" y="${y + fs + 1}" font-family="DejaVu Sans Mono, monospace" font-size="${fs}" fill="${textOn(t.bg)}" xml:space="preserve">${esc(label)}</text>`);
    if (t.sub) items.push(`<text x="${(x + w / 2).toFixed(1)}" y="${y + fs + 17}" text-anchor="middle" font-size="9" fill="#555">${esc(t.sub)}</text>`);
    x += w + 3;
  }
  let height = y + lineH + 8;
  const noteLines = notes.map((n, i) => `<text x="${pad}" y="${height + 12 + i * 14}" font-size="11" fill="#666">${esc(n)}</text>`);
  height += notes.length * 14 + (notes.length ? 8 : 0);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif">` +
    `<rect width="${width}" height="${height}" fill="#fff"/><text x="${pad}" y="20" font-size="14" font-weight="bold" fill="#222">${esc(title)}</text>` +
    items.join("") + noteLines.join("") + `</svg>`;
  return { svg, height };
}

/** Whitespace and control characters made visible, so a token of spaces or "\n" still shows. */
export function visible(s: string): string {
  return s.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/ /g, "·").replace(/[\u0000-\u001f]/g, "�") || "∅";
}
