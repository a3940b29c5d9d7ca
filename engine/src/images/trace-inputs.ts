/**
 * What `moescope trace` needs to run a prompt with images: the expanded prompt tokens, the image
 * features for the `<|patch|>` positions (RunOptions.embedOverride), and the vision tensors to write
 * into the trace file (`pixel_values`, `image_embeds`, `vision.layers.L.out`, `vision.post_ln`,
 * `vision.pixel_shuffle`, `vision.adapter`, with the shapes of the tiny-vision goldens).
 * Two sources of pixels: image files (preprocessed here, §3.1), or exact pixel values from a
 * safetensors file with the tile grid given (bypassing preprocessing).
 * The vision weights come from the model's own folder (HF) or from `mmproj` (with a GGUF text model).
 */
import { MoescopeError } from "../errors";
import type { Model } from "../model";
import { readSafetensors, TensorOut } from "../safetensors";
import type { ImageInput } from "./decode";
import { ImagePlan, parseGrid, planFromGrid } from "./plan";
import { preprocessImage } from "./preprocess";
import { expandImagePlaceholders, ExpandedPrompt, imageTokenIds } from "./prompt";
import { VisionModel } from "./vision";

export interface VisionTraceOptions {
  /** The prompt, with one `<|image|>` placeholder per image. */
  prompt: string | Int32Array;
  /** Image files / Buffers / data URIs, in prompt order. */
  images?: ImageInput | ImageInput[];
  /** A safetensors file holding `pixel_values` [tiles, 3, S, S] (or its only tensor), with `grid`. */
  pixelValues?: string;
  /** "RxC" tile grid of the pixel values (one image). */
  grid?: string;
  /** mmproj GGUF (needed when the text model is a GGUF file). */
  mmproj?: string;
  /** Vision hook points to write (default "all": every one except attention probabilities). */
  capture?: string | string[];
  maxTiles?: number;
  maxPixels?: number;
  /** Resampler for resized tiles and the thumbnail (see PreprocessOptions). */
  resample?: "pillow" | "float64";
  signal?: AbortSignal;
}

export interface VisionTraceInputs {
  tokens: Int32Array;
  embedOverride: { positions: Int32Array; rows: Float32Array };
  tensors: TensorOut[];
  /** For grounding: plans and prompt spans of the images. */
  plans: ImagePlan[];
  expanded: ExpandedPrompt;
  vision: VisionModel;
  /** All tiles of all images, [tiles, 3, S, S] (what occlusion masks). */
  pixelValues: Float32Array;
}

/** The vision tower that goes with a text model: its HF folder, or the given mmproj file. */
export async function visionFor(model: Model, mmproj?: string): Promise<VisionModel> {
  if (mmproj) return VisionModel.load(mmproj);
  if (model.config.format === "hf") return VisionModel.load(model.path);
  throw new MoescopeError(`${model.path} is a GGUF text model: give the vision tower with --mmproj FILE (a llama.cpp mmproj GGUF)`, "MODEL_NO_VISION");
}

export async function visionTraceInputs(model: Model, opts: VisionTraceOptions): Promise<VisionTraceInputs> {
  const vision = await visionFor(model, opts.mmproj);
  const vi = vision.info;
  if (vi.projOut !== model.config.nEmbd)
    throw new MoescopeError(`the vision projector outputs ${vi.projOut} values per token but the text model's hidden size is ${model.config.nEmbd}`, "MODEL_NO_VISION");
  const planOpts = { tile: vi.imageSize, patch: vi.patchSize, shuffleFactor: vi.shuffleFactor, maxTiles: opts.maxTiles };
  const tileLen = 3 * vi.imageSize ** 2;

  let plans: ImagePlan[];
  let pixels: Float32Array;
  if (opts.pixelValues !== undefined) {
    if (opts.images !== undefined) throw new MoescopeError("give either images or pixel values, not both", "BAD_ARGUMENT");
    if (!opts.grid) throw new MoescopeError("pixel values need their tile grid (--grid RxC)", "BAD_ARGUMENT");
    const st = readSafetensors(opts.pixelValues).tensors;
    const t = st.get("pixel_values") ?? (st.size === 1 ? [...st.values()][0] : undefined);
    if (!t) throw new MoescopeError(`${opts.pixelValues}: no pixel_values tensor`, "BAD_PIXELS");
    const plan = planFromGrid(...parseGrid(opts.grid), planOpts);
    if (t.data.length !== plan.tiles * tileLen)
      throw new MoescopeError(`${opts.pixelValues}: pixel_values ${JSON.stringify(t.shape)} does not hold the ${plan.tiles} tiles of a ${opts.grid} grid${plan.thumbnail ? " (with thumbnail)" : ""}`, "BAD_PIXELS");
    plans = [plan];
    pixels = Float32Array.from(t.data);
  } else {
    const list = opts.images === undefined ? [] : Array.isArray(opts.images) ? opts.images : [opts.images];
    if (!list.length) throw new MoescopeError("no images given", "BAD_ARGUMENT");
    const pre = [];
    for (const img of list) pre.push(await preprocessImage(img, { ...planOpts, maxPixels: opts.maxPixels, resample: opts.resample }));
    plans = pre.map((p) => p.plan);
    pixels = new Float32Array(pre.reduce((n, p) => n + p.pixelValues.length, 0));
    let o = 0;
    for (const p of pre) { pixels.set(p.pixelValues, o); o += p.pixelValues.length; }
  }

  const prompt = typeof opts.prompt === "string" ? model.tokenize(opts.prompt) : opts.prompt;
  const expanded = expandImagePlaceholders(prompt, plans, imageTokenIds(model));
  const nTiles = pixels.length / tileLen;
  const out = await vision.encode(pixels, nTiles, { capture: opts.capture ?? "all", signal: opts.signal });
  if (out.nTokens !== expanded.patchPositions.length)
    throw new MoescopeError(`internal: ${out.nTokens} image features for ${expanded.patchPositions.length} <|patch|> positions`, "INTERNAL");

  const tensors: TensorOut[] = [
    { name: "pixel_values", dtype: "F32", shape: [nTiles, 3, vi.imageSize, vi.imageSize], data: pixels },
    { name: "image_embeds", dtype: "F32", shape: [out.nTokens, vi.projOut], data: out.embeds },
  ];
  for (const t of out.tensors.values()) tensors.push({ name: t.name, dtype: "F32", shape: t.shape, data: t.data });
  return { tokens: expanded.tokens, embedOverride: { positions: expanded.patchPositions, rows: out.embeds }, tensors, plans, expanded, vision, pixelValues: pixels };
}
