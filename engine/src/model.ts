/**
 * Model: a loaded Llama 4 checkpoint (GGUF file or Hugging Face folder) and what a notebook does with
 * it: tokenize, generate with streaming, run with a capture plan and interventions. Every call that
 * computes runs on native worker threads and obeys an AbortSignal (its own, else the ambient one the
 * kernel sets per cell).
 */
import * as fs from "fs";
import * as nodePath from "path";
import { effectiveSignal } from "./cancel";
import { hasFrontend, progress, Progress } from "./display";
import { applyChatTemplate, ChatMessage } from "./chat";
import { CancelledError, CaptureBudgetError, invalidParameter, MoescopeError, wrapNative } from "./errors";
import { resolveHookNames } from "./hooks";
import { addon, NativeEvent, NativeInfo, NativeLayerPlan, NativeModel } from "./native";
import { Trace, TraceRecord } from "./trace";
import { kvCacheBytes, KvCacheType } from "./memory";

export interface CaptureOptions {
  /** Hook names or patterns (`blocks.*.hook_resid_post`), or "routing" / "all" / "none". */
  names?: string | string[];
  /** Token positions whose rows are kept: a range, or "last" (the last prompt token and everything generated). */
  positions?: { begin?: number; end?: number } | "last" | "all";
  /** Heads kept in attention patterns (default all). */
  heads?: number[];
}

export interface Interventions {
  /** Zero the routed output of `expert` in `layer` (mode "zero", default), or send its tokens to the next-best expert ("reroute"). */
  ablateExperts?: { layer: number; expert: number; mode?: "zero" | "reroute" }[];
  /** The token at `pos` (every token if pos is -1) uses `expert` in `layer`; the gate is sigmoid of that expert's own logit. */
  forceRoutes?: { layer: number; pos: number; expert: number }[];
  /** Added to a layer's router logits before the top-k choice (gates still come from the raw logits). */
  routerBias?: { layer: number; bias: Float32Array | number[] }[];
  /** Added to the residual stream after `layer` (blocks.L.hook_resid_post), optionally only on some positions. */
  steer?: { layer: number; vector: Float32Array | number[]; scale?: number; positions?: { begin?: number; end?: number } }[];
  /**
   * Replace a hook point's rows at the given positions: with `values` ([positions, row]), or with the
   * same hook's rows from another run (`from`, which must have captured that hook at those positions).
   */
  patch?: ({ name: string; positions: number[]; values: Float32Array | number[] } | { name: string; positions: number[]; from: Trace })[];
  /** Zero one attention head's output (its pattern is still computed and reported). */
  ablateHeads?: { layer: number; head: number }[];
  /** Replay the routing recorded in a trace (every MoE layer it captured), from position 0. */
  replayRouting?: Trace;
}

export interface RunOptions {
  capture?: CaptureOptions | string | string[];
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Stop at the model's end-of-generation tokens (default true). */
  stopAtEog?: boolean;
  /** Prompt positions whose logits are returned (default 1: the last). */
  logitsLast?: number;
  interventions?: Interventions;
  signal?: AbortSignal;
  onToken?: (token: { id: number; text: string; index: number }) => void;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
  /**
   * A progress line (tokens done, tokens/s) updated in place in the notebook. Default: shown inside a
   * kernel for runs that take a while (a prompt of 512 tokens or more, or 32 or more new tokens).
   */
  progress?: boolean;
  /** Refuse captures larger than this (default 4 GiB). */
  captureBudgetBytes?: number;
  /**
   * "exact" (default): float32 activations (the K-quants' decode on AVX-512 CPUs computes in integers
   * with each 4 activations held to float32's 24-bit precision under a shared exponent: as close to
   * float64 as float32 arithmetic). "fast": quantized weights are multiplied with activations
   * rounded to int8 as llama.cpp rounds them: per 256 values for the K-quants (Q4_K, Q5_K, Q6_K; on
   * CPUs with AVX2, elsewhere they stay exact, and so do their decode steps on AVX-512 CPUs, whose
   * exact integer kernels are as fast), per 32 for Q8_0 and Q4_0 (in products of up to 4
   * tokens, where longer ones are faster exact; Q8_0 in every product on CPUs with AVX-512 VNNI).
   * About 1e-3 relative error per matmul, and logits as far from float64 as llama.cpp's: enough to
   * flip routing decisions and generated tokens (see BENCHMARKS.md). Routers and float weights always
   * stay exact.
   */
  precision?: "exact" | "fast";
  /**
   * KV cache element type. "f32" (default): exact. "bf16": half the memory (keys and values are rounded
   * to bfloat16 once, as they enter the cache; about 1e-3 relative error in attention scores), for long
   * contexts: see `estimateKvCache`.
   */
  kvCache?: KvCacheType;
  /** Rows that replace token embeddings at some positions (image features). */
  embedOverride?: { positions: Int32Array | number[]; rows: Float32Array };
}

export interface ModelConfig extends NativeInfo {}

const DEFAULT_BUDGET = 4 * 1024 ** 3;

export function defaultModelPath(): string {
  if (process.env.MOESCOPE_MODEL) return process.env.MOESCOPE_MODEL;
  let root = __dirname;
  while (!fs.existsSync(nodePath.join(root, "package.json")) && nodePath.dirname(root) !== root) root = nodePath.dirname(root);
  return nodePath.join(root, "models", "tinyscout");
}

function concatRows(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let o = 0;
  for (const r of rows) out.set(r, (o += r.length) - r.length);
  return out;
}

function fmtBytes(b: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) (b /= 1024), i++;
  return `${b.toFixed(b < 10 && i > 0 ? 2 : 0)} ${u[i]}`;
}

export class Model {
  private constructor(private readonly native: NativeModel, readonly config: ModelConfig) {}

  /**
   * Loads a checkpoint. With no path: $MOESCOPE_MODEL, else TinyScout, the small Llama 4 trained for
   * exploring that ships in models/tinyscout.
   *
   * `device`: "cpu" (default), "cuda" (the CUDA backend; an error if this build or machine has none)
   * or "auto" (CUDA when available, else the CPU). Same numbers, hooks and interventions on both.
   * `threads`: the CPU threads that compute. There is one pool per process, shared by every loaded
   * model, so the last value given applies to all of them (default: $MOESCOPE_THREADS, else the
   * machine's cores).
   */
  static async load(path?: string, opts: { threads?: number; device?: "cpu" | "cuda" | "auto" } = {}): Promise<Model> {
    path ??= defaultModelPath();
    if (typeof path !== "string" || !path) throw invalidParameter("path", "a GGUF file or a Hugging Face folder", path);
    // MOESCOPE_DEVICE sets the default (native/tools/device-check.sh runs the fixture suite on CUDA with it).
    const device = opts.device ?? ((process.env.MOESCOPE_DEVICE || "cpu") as "cpu" | "cuda" | "auto");
    if (device !== "cpu" && device !== "cuda" && device !== "auto") throw invalidParameter("device", '"cpu", "cuda" or "auto"', device);
    const a = addon();
    if (opts.threads !== undefined) a.setThreads(opts.threads);
    try {
      const n = await a.loadModel(path, device);
      return new Model(n, n.info());
    } catch (e) {
      throw wrapNative(e);
    }
  }

  get path(): string {
    return this.config.path;
  }
  /** Per layer: RoPE+chunked or NoPE+global, QK-norm, temperature tuning, MoE or dense. */
  get layerPlan(): NativeLayerPlan[] {
    return this.config.layers;
  }
  hookNames(): string[] {
    return this.native.hookNames();
  }

  /** Text -> ids. BOS is added when the file says so (default), special tokens like <|eot|> are parsed. */
  tokenize(text: string, opts: { bos?: boolean; special?: boolean } = {}): Int32Array {
    if (typeof text !== "string") throw invalidParameter("text", "a string", text);
    try {
      return this.native.tokenize(text, opts.bos ?? this.config.addBos, opts.special ?? true);
    } catch (e) {
      throw wrapNative(e);
    }
  }
  decode(ids: Int32Array | number[]): string {
    return this.native.detokenize(ids instanceof Int32Array ? ids : Int32Array.from(ids)).toString("utf8");
  }
  /** Each token's own text (invalid partial UTF-8 shown as U+FFFD), for labels in views. */
  tokenStrings(ids: ArrayLike<number>): string[] {
    return Array.from(ids, (id) => this.native.tokenBytes(id).toString("utf8"));
  }
  tokenId(text: string): number {
    return this.native.tokenId(text);
  }
  chat(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    return applyChatTemplate(messages, { ...opts, bos: false });
  }

  /** Bytes a capture plan would hold for a run of nTokens tokens. */
  estimateCapture(capture: RunOptions["capture"], nTokens: number, nPrompt = nTokens): number {
    return this.native.estimateCapture(this.capturePlan(capture, nPrompt), nTokens);
  }

  /** Bytes of KV cache a run of nTokens tokens allocates (chunked layers hold one chunk at most). */
  estimateKvCache(nTokens: number, kvCache: KvCacheType = "f32"): number {
    return kvCacheBytes(this.config, nTokens, kvCache);
  }

  /** Generates text, streaming tokens through onToken; returns the text and the run's trace. */
  async generate(prompt: string | Int32Array | number[], opts: RunOptions = {}): Promise<{ text: string; tokens: Int32Array; trace: Trace }> {
    const trace = await this.run(prompt, { maxNewTokens: 64, ...opts });
    return { text: this.decode(trace.generated), tokens: trace.generated, trace };
  }

  /** Runs the model over a prompt (and optionally generates), with a capture plan and interventions. */
  async run(prompt: string | Int32Array | number[], opts: RunOptions = {}): Promise<Trace> {
    const tokens = typeof prompt === "string" ? this.tokenize(prompt) : prompt instanceof Int32Array ? prompt : Int32Array.from(prompt);
    if (tokens.length === 0) throw invalidParameter("prompt", "at least one token", prompt);
    const maxNew = opts.maxNewTokens ?? 0;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw invalidParameter("maxNewTokens", "an integer >= 0", maxNew);
    const plan = opts.capture === undefined ? undefined : this.capturePlan(opts.capture, tokens.length);
    if (plan) {
      const bytes = this.native.estimateCapture(plan, tokens.length + maxNew);
      const budget = opts.captureBudgetBytes ?? DEFAULT_BUDGET;
      if (bytes > budget)
        throw new CaptureBudgetError(
          `this capture needs ${fmtBytes(bytes)} for ${tokens.length + maxNew} tokens, over the budget of ${fmtBytes(budget)}. ` +
            `Narrow it: fewer hook names (e.g. "routing"), positions: "last", heads: [..] for attention patterns, ` +
            `or raise captureBudgetBytes.`,
          bytes,
          budget,
        );
    }
    const interventions = opts.interventions ? this.nativeInterventions(opts.interventions) : undefined;
    const request = {
      prompt: tokens,
      maxNewTokens: maxNew,
      temperature: opts.temperature ?? 0,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      seed: opts.seed ?? 0,
      stopAtEog: opts.stopAtEog ?? true,
      logitsLast: opts.logitsLast ?? 1,
      precision: opts.precision ?? "exact",
      kvCache: opts.kvCache ?? "f32",
      capture: plan,
      interventions,
      embedOverride: opts.embedOverride,
    };
    const signal = effectiveSignal(opts.signal);
    if (signal?.aborted) throw new CancelledError();
    const flag = new (addon().CancelFlag)();
    const onAbort = () => flag.cancel();
    signal?.addEventListener("abort", onAbort);
    const decoder = new TextDecoder("utf-8");
    let index = 0;
    const showProgress = opts.progress ?? (hasFrontend() && (tokens.length >= 512 || maxNew >= 32));
    let bar: Progress | undefined;
    const onEvent = (e: NativeEvent) => {
      if (e.type === "token") {
        const text = decoder.decode(this.native.tokenBytes(e.token), { stream: true });
        opts.onToken?.({ id: e.token, text, index: index++ });
        return;
      }
      opts.onProgress?.({ phase: e.phase, done: e.done, total: e.total });
      if (!showProgress) return;
      if (e.done === 0 || (e.phase === "decode" && e.done === 1)) {
        bar?.done();
        bar = progress(e.total, { unit: "tokens", label: e.phase === "prefill" ? "prompt" : "generating" });
      }
      bar?.set(e.done);
      if (e.done === e.total) bar?.done();
    };
    try {
      const r = await this.native.run(request, flag, opts.onToken || opts.onProgress || showProgress ? onEvent : null);
      const all = new Int32Array(tokens.length + r.generated.length);
      all.set(tokens);
      all.set(r.generated, tokens.length);
      const record: TraceRecord = {
        model: this.config.path,
        format: this.config.format,
        capture: plan ? { names: plan.names, posBegin: plan.posBegin, posEnd: plan.posEnd ?? null, heads: plan.heads } : { names: [], posBegin: 0, posEnd: null, heads: [] },
        sampling: { maxNewTokens: maxNew, temperature: request.temperature, topK: request.topK, topP: request.topP, seed: request.seed, stopAtEog: request.stopAtEog, precision: request.precision, kvCache: request.kvCache },
        interventions: this.describeInterventions(opts.interventions),
      };
      return new Trace(this.config, all, tokens.length, r.generated, r.logits, r.logitsRows, r.captured, record, this.tokenStrings(all),
        { prefillSeconds: r.prefillSeconds, decodeSeconds: r.decodeSeconds }, r.stopReason);
    } catch (e) {
      throw wrapNative(e);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private capturePlan(capture: RunOptions["capture"], nPrompt: number): { names: string[]; posBegin: number; posEnd?: number; heads: number[] } {
    const c: CaptureOptions = typeof capture === "string" || Array.isArray(capture) ? { names: capture } : capture ?? {};
    let names: string[];
    try {
      names = resolveHookNames(c.names ?? "routing", this.hookNames());
    } catch (e) {
      throw new MoescopeError((e as Error).message, "CAPTURE_BAD_PLAN");
    }
    let posBegin = 0;
    let posEnd: number | undefined;
    if (c.positions === "last") posBegin = nPrompt - 1;
    else if (c.positions && c.positions !== "all") {
      posBegin = c.positions.begin ?? 0;
      posEnd = c.positions.end;
    }
    const heads = c.heads ?? [];
    for (const h of heads) if (!Number.isInteger(h) || h < 0 || h >= this.config.nHead) throw invalidParameter("capture.heads", `integers in [0, ${this.config.nHead - 1}]`, h);
    return { names, posBegin, posEnd, heads };
  }

  private nativeInterventions(iv: Interventions): object {
    const f32 = (v: Float32Array | number[], scale = 1) => Float32Array.from(v, (x) => x * scale);
    const replays: object[] = [];
    if (iv.replayRouting) {
      for (const l of iv.replayRouting.moeLayers) {
        if (!iv.replayRouting.has(`blocks.${l}.mlp.hook_expert_indices`)) continue;
        const r = iv.replayRouting.routing(l);
        replays.push({ layer: l, pos0: r.positions[0] ?? 0, k: r.k, experts: r.experts });
      }
    }
    return {
      ablateExperts: (iv.ablateExperts ?? []).map((a) => ({ layer: a.layer, expert: a.expert, reroute: a.mode === "reroute" })),
      forceRoutes: iv.forceRoutes ?? [],
      routerBiases: (iv.routerBias ?? []).map((b) => ({ layer: b.layer, bias: f32(b.bias) })),
      steers: (iv.steer ?? []).map((s) => ({ layer: s.layer, vector: f32(s.vector, s.scale ?? 1), posBegin: s.positions?.begin, posEnd: s.positions?.end })),
      patches: (iv.patch ?? []).map((p) => ({
        name: p.name,
        positions: Int32Array.from(p.positions),
        values: "from" in p ? concatRows(p.positions.map((pos) => p.from.row(p.name, pos) as Float32Array)) : f32(p.values),
      })),
      ablateHeads: iv.ablateHeads ?? [],
      replays,
    };
  }

  private describeInterventions(iv?: Interventions): Record<string, unknown> {
    if (!iv) return {};
    const out: Record<string, unknown> = {};
    if (iv.ablateExperts?.length) out.ablateExperts = iv.ablateExperts.map((a) => ({ ...a, mode: a.mode ?? "zero" }));
    if (iv.forceRoutes?.length) out.forceRoutes = iv.forceRoutes;
    if (iv.routerBias?.length) out.routerBias = iv.routerBias.map((b) => ({ layer: b.layer, bias: Array.from(b.bias) }));
    if (iv.steer?.length) out.steer = iv.steer.map((s) => ({ layer: s.layer, scale: s.scale ?? 1, positions: s.positions ?? null, norm: Math.hypot(...Array.from(s.vector)) }));
    if (iv.patch?.length) out.patch = iv.patch.map((p) => ({ name: p.name, positions: p.positions, from: "from" in p ? p.from.record.model : "values" }));
    if (iv.ablateHeads?.length) out.ablateHeads = iv.ablateHeads;
    if (iv.replayRouting) out.replayRouting = { from: iv.replayRouting.record.model, layers: iv.replayRouting.moeLayers.length };
    return out;
  }
}

/** Runs a native busy loop for `ms` milliseconds on a worker thread (for testing responsiveness and interrupts). */
export async function nativeSpin(ms: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const signal = effectiveSignal(opts.signal);
  if (signal?.aborted) throw new CancelledError();
  const flag = new (addon().CancelFlag)();
  const onAbort = () => flag.cancel();
  signal?.addEventListener("abort", onAbort);
  try {
    await addon().nativeSpin(ms, flag);
  } catch (e) {
    throw wrapNative(e);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
