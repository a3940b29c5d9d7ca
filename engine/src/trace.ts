/**
 * A Trace is what one run of the model leaves behind: the tokens, the logits asked for, every captured
 * hook tensor (typed arrays that point at native memory, no copy) and a record of what was changed
 * (interventions) and how it was sampled. Views slice it per token, per layer and per expert.
 */
import type { NativeCaptured, NativeInfo } from "./native";

export interface TraceTensor {
  name: string;
  dtype: "f32" | "i32";
  /** [rows, ...] with rows = captured token positions; hook_pattern is [H, rows, S]. */
  shape: number[];
  data: Float32Array | Int32Array;
  /** Absolute token position of each row. */
  positions: number[];
}

export interface TraceRecord {
  model: string;
  format: string;
  capture: { names: string[]; posBegin: number; posEnd: number | null; heads: number[] };
  sampling: { maxNewTokens: number; temperature: number; topK: number; topP: number; seed: number; stopAtEog: boolean; precision: "exact" | "fast"; kvCache?: "f32" | "bf16" };
  interventions: Record<string, unknown>;
}

export class Trace {
  readonly tensors = new Map<string, TraceTensor>();

  constructor(
    readonly info: NativeInfo,
    /** Prompt tokens followed by the generated ones. */
    readonly tokens: Int32Array,
    readonly nPrompt: number,
    readonly generated: Int32Array,
    /** Logits of the last `logitsRows` prompt positions, [logitsRows, V]. */
    readonly logits: Float32Array,
    readonly logitsRows: number,
    captured: NativeCaptured[],
    readonly record: TraceRecord,
    readonly tokenTexts: string[],
    readonly timing: { prefillSeconds: number; decodeSeconds: number },
    readonly stopReason: string,
  ) {
    for (const c of captured) this.tensors.set(c.name, { ...c, positions: Array.from(c.positions) });
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }
  has(name: string): boolean {
    return this.tensors.has(this.resolve(name));
  }
  /** `blocks.-1.hook_resid_post` counts layers from the end. */
  get(name: string): TraceTensor {
    const n = this.resolve(name);
    const t = this.tensors.get(n);
    if (!t) throw new Error(`the trace has no ${n}; captured: ${this.names().slice(0, 6).join(", ")}${this.tensors.size > 6 ? ", ..." : ""}`);
    return t;
  }
  private resolve(name: string): string {
    return name.replace(/^blocks\.(-\d+)\./, (_, l) => `blocks.${this.info.nLayer + Number(l)}.`);
  }

  /** One token's row of a [rows, ...] tensor. */
  row(name: string, pos: number): Float32Array | Int32Array {
    const t = this.get(name);
    const r = t.positions.indexOf(pos);
    if (r < 0) throw new Error(`${name} was not captured at position ${pos}`);
    const len = t.data.length / t.positions.length;
    return t.data.subarray(r * len, (r + 1) * len);
  }

  /** The MoE layers, in order. */
  get moeLayers(): number[] {
    return this.info.layers.map((l, i) => (l.isMoe ? i : -1)).filter((i) => i >= 0);
  }

  /** Routing of one MoE layer: chosen experts [T, K], their gates [T, K], router logits [T, E]. */
  routing(layer: number): { positions: number[]; experts: Int32Array; gates: Float32Array; logits?: Float32Array; k: number } {
    const idx = this.get(`blocks.${layer}.mlp.hook_expert_indices`);
    const gates = this.get(`blocks.${layer}.mlp.hook_expert_weights`);
    const lg = this.tensors.get(`blocks.${layer}.mlp.hook_router_logits`);
    return { positions: idx.positions, experts: idx.data as Int32Array, gates: gates.data as Float32Array, logits: lg?.data as Float32Array | undefined, k: idx.shape[1] };
  }

  /** Top-1 expert of every MoE layer for the token at `pos` (layer -> expert). */
  expertsAt(pos: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const l of this.moeLayers) if (this.has(`blocks.${l}.mlp.hook_expert_indices`)) out.set(l, this.row(`blocks.${l}.mlp.hook_expert_indices`, pos)[0]);
    return out;
  }

  /** Attention probabilities of one layer and head: [rows, S] (a view, not a copy). */
  pattern(layer: number, head: number): { rows: number; keys: number; data: Float32Array; positions: number[] } {
    const t = this.get(`blocks.${layer}.attn.hook_pattern`);
    const [H, rows, S] = t.shape;
    if (head < 0 || head >= H) throw new Error(`head ${head} was not captured (${H} heads in the trace)`);
    return { rows, keys: S, data: (t.data as Float32Array).subarray(head * rows * S, (head + 1) * rows * S), positions: t.positions };
  }

  /** Positions where the token's top-1 expert is `expert` in `layer`. */
  tokensOnExpert(layer: number, expert: number): number[] {
    const r = this.routing(layer);
    return r.positions.filter((_, i) => r.experts[i * r.k] === expert);
  }

  /** Logits row of a prompt position (only the last `logitsRows` are kept unless unembed.hook_out was captured). */
  logitsAt(pos: number): Float32Array {
    const first = this.nPrompt - this.logitsRows;
    if (pos >= first && pos < this.nPrompt) return this.logits.subarray((pos - first) * this.info.nVocab, (pos - first + 1) * this.info.nVocab);
    return this.row("unembed.hook_out", pos) as Float32Array;
  }

  /** A short human summary (what a notebook shows as text/plain). */
  toString(): string {
    return `Trace(${this.nPrompt} prompt + ${this.generated.length} generated tokens, ${this.tensors.size} captured tensors` +
      `${Object.keys(this.record.interventions).length ? ", with interventions" : ""})`;
  }
}
