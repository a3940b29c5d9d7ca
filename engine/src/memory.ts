/**
 * KV-cache memory planning. Llama 4's chunked layers attend only inside their 8192-token chunk, so
 * their cache holds at most one chunk; the global (NoPE) layers, one in four, hold every token
 * (spec §1.2, §2.4). That is why Scout's cache for 1M tokens is about 47 GiB in BF16 and not the
 * 183 GiB a cache of every layer at every position would take. The engine allocates exactly this
 * (model/llama4.cpp new_session, cuda/llama4_cuda.cu new_run).
 */
import type { SynthPreset } from "./synth";

export type KvCacheType = "f32" | "bf16";

/** What the cache size depends on: a loaded model's `config` has these fields. */
export interface KvShape {
  nHeadKv: number;
  headDim: number;
  attnChunk: number;
  layers: { chunkedAttn: boolean }[];
}

const ELEM_BYTES: Record<KvCacheType, number> = { f32: 4, bf16: 2 };

/** Bytes of keys and values one sequence of nTokens holds. */
export function kvCacheBytes(shape: KvShape, nTokens: number, kvCache: KvCacheType = "f32"): number {
  const elem = ELEM_BYTES[kvCache];
  if (elem === undefined) throw new Error(`kvCache must be "f32" or "bf16", not ${JSON.stringify(kvCache)}`);
  if (!(nTokens >= 0)) throw new Error(`nTokens must be >= 0, got ${nTokens}`);
  const row = 2 * shape.nHeadKv * shape.headDim * elem; // k and v of one position
  let slots = 0;
  for (const l of shape.layers) slots += l.chunkedAttn && shape.attnChunk > 0 ? Math.min(nTokens, shape.attnChunk) : nTokens;
  return slots * row;
}

/** The KV shape of a `moescope synth` preset (Llama 4's layer schedule: every fourth layer global). */
export function presetKvShape(p: SynthPreset): KvShape {
  return {
    nHeadKv: p.kvHeads,
    headDim: p.headDim,
    attnChunk: 8192,
    layers: Array.from({ length: p.layers }, (_, i) => ({ chunkedAttn: (i + 1) % 4 !== 0 })),
  };
}
