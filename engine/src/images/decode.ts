/**
 * Image input -> 8-bit RGB pixels, with sharp. Accepts a file path, an encoded image in a Buffer /
 * Uint8Array, or a base64 `data:` URI (never a URL: nothing is fetched). Any format sharp reads.
 * Alpha is composited onto white (META `pil_RGBA2RGB`); greyscale becomes RGB; EXIF orientation is
 * NOT applied (the reference opens images with PIL, which does not rotate). The pixel count is checked
 * from the header before any pixel is decoded, so a hostile "enormous" image costs nothing.
 * Every failure is a MoescopeError with code IMAGE_INVALID / IMAGE_TOO_LARGE / IMAGE_NOT_FOUND.
 */
import * as fs from "fs";
import sharp from "sharp";
import { MoescopeError } from "../errors";

export type ImageInput = string | Buffer | Uint8Array;

export interface RgbImage {
  width: number;
  height: number;
  /** [height, width, 3] row-major. */
  rgb: Uint8Array;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this (default 100 megapixels). */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

function invalid(what: string, why: string): MoescopeError {
  return new MoescopeError(`${what}: not a readable image (${why})`, "IMAGE_INVALID");
}

/** The encoded bytes of an input and a short name for messages. */
export function imageBytes(input: ImageInput): { bytes: Buffer; what: string } {
  if (typeof input === "string") {
    if (input.startsWith("data:")) {
      const m = /^data:([^;,]*)(;[^,]*)?,(.*)$/s.exec(input);
      if (!m) throw invalid("data URI", "malformed: expected data:<type>;base64,<data>");
      const isB64 = (m[2] ?? "").split(";").includes("base64");
      const bytes = isB64 ? Buffer.from(m[3], "base64") : Buffer.from(decodeURIComponent(m[3]), "latin1");
      return { bytes, what: `data URI (${m[1] || "no type"})` };
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) throw new MoescopeError(`${input}: URLs are not fetched; give a file path, a Buffer or a data: URI`, "IMAGE_INVALID");
    let st: fs.Stats;
    try {
      st = fs.statSync(input);
    } catch {
      throw new MoescopeError(`${input}: no such image file`, "IMAGE_NOT_FOUND");
    }
    if (!st.isFile()) throw new MoescopeError(`${input}: not a file`, "IMAGE_NOT_FOUND");
    return { bytes: fs.readFileSync(input), what: input };
  }
  if (input instanceof Uint8Array) return { bytes: Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength), what: "image buffer" };
  throw new MoescopeError(`image: expected a file path, a Buffer or a data: URI, got ${input === null ? "null" : typeof input}`, "INVALID_PARAMETER");
}

/** Header-only look: format and size. */
export async function imageInfo(input: ImageInput): Promise<{ format: string; width: number; height: number; what: string }> {
  const { bytes, what } = imageBytes(input);
  if (bytes.length === 0) throw invalid(what, "empty");
  let meta;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw invalid(what, (e as Error).message);
  }
  if (!meta.width || !meta.height) throw invalid(what, "zero width or height");
  return { format: meta.format ?? "unknown", width: meta.width, height: meta.height, what };
}

export async function decodeImage(input: ImageInput, opts: DecodeOptions = {}): Promise<RgbImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { bytes, what } = imageBytes(input);
  if (bytes.length === 0) throw invalid(what, "empty");
  let meta;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw invalid(what, (e as Error).message);
  }
  const width = meta.width ?? 0, height = meta.height ?? 0;
  if (width < 1 || height < 1) throw invalid(what, `zero-size image ${width}×${height}`);
  if (width * height > maxPixels)
    throw new MoescopeError(`${what}: ${width}×${height} = ${width * height} pixels is over the limit of ${maxPixels} (raise maxPixels to allow it)`, "IMAGE_TOO_LARGE");
  let out;
  try {
    out = await sharp(bytes, { limitInputPixels: maxPixels, failOn: "error" })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw invalid(what, (e as Error).message);
  }
  const { data, info } = out;
  if (info.width !== width || info.height !== height) throw invalid(what, `decoded ${info.width}×${info.height}, header said ${width}×${height}`);
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const ch = info.channels;
  if (ch === 3) rgb.set(data.subarray(0, n * 3));
  else for (let i = 0; i < n; i++) {
    // 1 = grey, 2 = grey+alpha (already flattened), 4 = RGBA (already flattened)
    const base = i * ch;
    if (ch < 3) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = data[base];
    else { rgb[i * 3] = data[base]; rgb[i * 3 + 1] = data[base + 1]; rgb[i * 3 + 2] = data[base + 2]; }
  }
  return { width, height, rgb };
}
