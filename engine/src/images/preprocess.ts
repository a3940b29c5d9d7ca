/**
 * Pixels -> the vision tower's input (spec §3.1): best-fit tile canvas, aspect-preserving antialiased
 * bilinear resize without upscaling, zero padding at the bottom and right, normalisation
 * x = (v/255 − 0.5)/0.5 (computed in float64, rounded once to float32: META's form and the goldens';
 * HF additionally rounds through bfloat16, §6 item 8),
 * tiles row-major, then the global thumbnail (the whole original image stretched to one tile) when
 * there is more than one tile. Output layout [tiles, 3, S, S], what `VisionModel.encode` takes.
 */
import { decodeImage, DecodeOptions, ImageInput, RgbImage } from "./decode";
import { ImagePlan, ImagePlanOptions, planImage } from "./plan";
import { resizeBilinear, resizeBilinearF64 } from "./resample";

export interface PreprocessOptions extends ImagePlanOptions {
  /**
   * "pillow" (default): Pillow's fixed-point bilinear, as META (PIL) and HF (torchvision's uint8 port of it) resize.
   * "float64": the same filter in float64 with one final rounding, as the float64 goldens were made (≤ 1 grey level apart).
   */
  resample?: "pillow" | "float64";
  /**
   * "float32" (default): (v/255 − 0.5)/0.5 rounded once to float32 (META; the goldens).
   * "hf-bf16": HF's processor, which works in bfloat16: bf16(bf16(v)·(1/255)) − 0.5 rounded to bf16, then /0.5 (spec §3.1 step 7).
   */
  normalisation?: "float32" | "hf-bf16";
}

export interface PreprocessedImage {
  plan: ImagePlan;
  /** [tiles, 3, S, S] float32. */
  pixelValues: Float32Array;
  /** The decoded original (for overlays and occlusion). */
  image: RgbImage;
}

/** One uint8 channel value -> model input. */
export function normalise(v: number): number {
  return Math.fround((v / 255 - 0.5) / 0.5);
}
/** Round a number to the nearest bfloat16 (ties to even), returned as a float. */
export function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
  return f[0];
}
export function normaliseHfBf16(v: number): number {
  return bf16(bf16(bf16(v) * (1 / 255)) - 0.5) / 0.5;
}
const LUTS = {
  float32: Float32Array.from({ length: 256 }, (_, v) => normalise(v)),
  "hf-bf16": Float32Array.from({ length: 256 }, (_, v) => normaliseHfBf16(v)),
};

/** Writes an [h, w, 3] uint8 region (with zero padding outside it) as tile planes [3, S, S]. */
function writeTile(LUT: Float32Array, src: Uint8Array, h: number, w: number, y0: number, x0: number, S: number, dst: Float32Array, off: number): void {
  const pad = LUT[0];
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < S; y++) {
      const sy = y0 + y;
      const row = off + (c * S + y) * S;
      for (let x = 0; x < S; x++) {
        const sx = x0 + x;
        dst[row + x] = sy < h && sx < w ? LUT[src[(sy * w + sx) * 3 + c]] : pad;
      }
    }
}

/** The synchronous core: decoded pixels -> plan and tiles. */
export function tilesFromPixels(image: RgbImage, opts: PreprocessOptions = {}): PreprocessedImage {
  const plan = planImage(image.height, image.width, opts);
  const resize = opts.resample === "float64" ? resizeBilinearF64 : resizeBilinear;
  const lut = LUTS[opts.normalisation ?? "float32"];
  const S = plan.tile;
  const resized = plan.resizedHeight === image.height && plan.resizedWidth === image.width
    ? image.rgb
    : resize(image.rgb, image.height, image.width, 3, plan.resizedHeight, plan.resizedWidth);
  const tileLen = 3 * S * S;
  const pixelValues = new Float32Array(plan.tiles * tileLen);
  for (let r = 0; r < plan.rows; r++)
    for (let c = 0; c < plan.cols; c++)
      writeTile(lut, resized, plan.resizedHeight, plan.resizedWidth, r * S, c * S, S, pixelValues, (r * plan.cols + c) * tileLen);
  if (plan.thumbnail) {
    const thumb = resize(image.rgb, image.height, image.width, 3, S, S);
    writeTile(lut, thumb, S, S, 0, 0, S, pixelValues, (plan.tiles - 1) * tileLen);
  }
  return { plan, pixelValues, image };
}

export async function preprocessImage(input: ImageInput, opts: PreprocessOptions & DecodeOptions = {}): Promise<PreprocessedImage> {
  return tilesFromPixels(await decodeImage(input, opts), opts);
}
