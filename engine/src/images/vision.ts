/**
 * VisionModel: the Llama 4 vision tower (native, spec §3.2-3.4) from a Hugging Face folder or an
 * mmproj GGUF. `encode` turns pixel tiles into image features, one row per `<|patch|>`, on a native
 * worker thread, with optional captures of the tower's hook points (see `hookNames()`):
 * vision.embed, vision.layers.L.out, vision.layers.L.attn_probs, vision.post_ln, vision.pixel_shuffle,
 * vision.adapter. Loaded models are cached per path (the weights are memory-mapped, loading is cheap,
 * but a notebook re-running a cell should not map them twice).
 */
import { effectiveSignal } from "../cancel";
import { CancelledError, CaptureBudgetError, MoescopeError, wrapNative } from "../errors";
import { addon } from "../native";

export interface VisionInfo {
  path: string;
  format: "gguf" | "hf";
  imageSize: number;
  patchSize: number;
  nChannels: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  headDim: number;
  nFf: number;
  normEps: number;
  ropeTheta: number;
  shuffleFactor: number;
  adapterHidden: number;
  adapterOut: number;
  projOut: number;
  grid: number;
  seqLen: number;
  tokensPerTile: number;
  mappedBytes: number;
}

export interface VisionTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface VisionOutput {
  /** [tiles · tokensPerTile, projOut]: the rows that replace `<|patch|>` embeddings. */
  embeds: Float32Array;
  nTokens: number;
  tensors: Map<string, VisionTensor>;
}

interface NativeVision {
  info(): VisionInfo;
  hookNames(): string[];
  encode(pixels: Float32Array, nTiles: number, names: string[], cancel: Int32Array | null): Promise<{ embeds: Float32Array; nTokens: number; captured: VisionTensor[] }>;
}

const cache = new Map<string, Promise<VisionModel>>();

export class VisionModel {
  private constructor(private readonly native: NativeVision, readonly info: VisionInfo) {}

  static load(path: string): Promise<VisionModel> {
    if (typeof path !== "string" || !path) throw new MoescopeError("VisionModel.load: give a Hugging Face folder or an mmproj .gguf file", "BAD_ARGUMENT");
    let p = cache.get(path);
    if (!p) {
      p = (async () => {
        try {
          const n = (await (addon().loadVision as (p: string) => Promise<NativeVision>)(path)) as NativeVision;
          return new VisionModel(n, n.info());
        } catch (e) {
          cache.delete(path);
          throw wrapNative(e);
        }
      })();
      cache.set(path, p);
    }
    return p;
  }

  hookNames(): string[] {
    return this.native.hookNames();
  }

  /** Expands patterns like `vision.layers.*.out` against the hook names; "all" = every hook except attention probabilities. */
  resolveNames(capture: string | string[] | undefined): string[] {
    if (capture === undefined || capture === "none") return [];
    const all = this.hookNames();
    const pats = capture === "all" ? all.filter((n) => !n.endsWith(".attn_probs")) : Array.isArray(capture) ? capture : capture.split(",").map((s) => s.trim());
    const out = new Set<string>();
    for (const p of pats) {
      const re = new RegExp("^" + p.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^.]+") + "$");
      const hit = all.filter((n) => re.test(n));
      if (!hit.length) throw new MoescopeError(`"${p}" matches no vision hook point (${all.slice(0, 4).join(", ")}, ...)`, "CAPTURE_BAD_PLAN");
      hit.forEach((n) => out.add(n));
    }
    return all.filter((n) => out.has(n));
  }

  /** Bytes the named captures take for nTiles tiles (attention probabilities dominate: H·577² floats per tile and layer). */
  captureBytes(names: string[], nTiles: number): number {
    const { seqLen: S, nEmbd: C, nHead: H, tokensPerTile: T, shuffleFactor: r, adapterOut: A } = this.info;
    let per = 0;
    for (const n of names) {
      if (n.endsWith(".attn_probs")) per += H * S * S;
      else if (n === "vision.post_ln") per += (S - 1) * C;
      else if (n === "vision.pixel_shuffle") per += T * r * r * C;
      else if (n === "vision.adapter") per += T * A;
      else per += S * C;
    }
    return per * 4 * nTiles;
  }

  /** pixelValues: [nTiles, 3, S, S] as made by preprocessImage. Captures over `captureBudgetBytes` (default 4 GiB) are refused. */
  async encode(pixelValues: Float32Array, nTiles: number, opts: { capture?: string | string[]; signal?: AbortSignal; captureBudgetBytes?: number } = {}): Promise<VisionOutput> {
    const per = this.info.nChannels * this.info.imageSize ** 2;
    if (!(pixelValues instanceof Float32Array) || pixelValues.length !== nTiles * per)
      throw new MoescopeError(`VisionModel.encode: expected ${nTiles} tiles of ${per} float32 values, got ${pixelValues?.length}`, "BAD_PIXELS");
    const names = this.resolveNames(opts.capture);
    const bytes = this.captureBytes(names, nTiles), budget = opts.captureBudgetBytes ?? 4 * 1024 ** 3;
    if (bytes > budget)
      throw new CaptureBudgetError(`this vision capture needs ${(bytes / 1024 ** 3).toFixed(2)} GiB for ${nTiles} tiles, over the budget of ${(budget / 1024 ** 3).toFixed(2)} GiB: ` +
        `capture fewer layers' attn_probs (e.g. "vision.layers.33.attn_probs") or raise captureBudgetBytes`, bytes, budget);
    const signal = effectiveSignal(opts.signal);
    if (signal?.aborted) throw new CancelledError();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => Atomics.store(flag, 0, 1);
    signal?.addEventListener("abort", onAbort);
    try {
      const r = await this.native.encode(pixelValues, nTiles, names, flag);
      return { embeds: r.embeds, nTokens: r.nTokens, tensors: new Map(r.captured.map((t) => [t.name, t])) };
    } catch (e) {
      throw wrapNative(e);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
