/**
 * Routing statistics over one trace or many (none of the hook libraries computes these natively).
 *
 * Conventions, because Llama 4's router is not a softmax: each token picks the expert with the highest
 * raw router logit z, and that expert's input is scaled by the gate sigmoid(z_top1). There is no
 * distribution over experts in the model itself, so
 *   - `entropy` is the entropy (nats) of softmax(z) over all experts: how peaked the router's preference
 *     is, comparable across layers and models; log(E) means no preference;
 *   - `margin` is z_top1 − z_top2 in raw logits: how close the token came to another expert;
 *   - `gate` is sigmoid(z_top1), what the model actually multiplies by.
 * Loads and co-activations count top-k choices (k = 1 for Scout and Maverick).
 */
import { Trace } from "./trace";

export interface TokenRouting {
  pos: number;
  expert: number;
  gate: number;
  margin: number;
  entropy: number;
}

/** Per-token routing detail of one layer (needs router logits captured). */
export function tokenRouting(trace: Trace, layer: number): TokenRouting[] {
  const r = trace.routing(layer);
  if (!r.logits) throw new Error(`layer ${layer}: capture blocks.${layer}.mlp.hook_router_logits for margins and entropy`);
  const E = trace.info.nExpert;
  return r.positions.map((pos, i) => {
    const z = r.logits!.subarray(i * E, (i + 1) * E);
    let m1 = -Infinity, m2 = -Infinity;
    for (const v of z) if (v > m1) (m2 = m1), (m1 = v); else if (v > m2) m2 = v;
    let s = 0;
    for (const v of z) s += Math.exp(v - m1);
    let h = 0;
    for (const v of z) {
      const p = Math.exp(v - m1) / s;
      if (p > 0) h -= p * Math.log(p);
    }
    return { pos, expert: r.experts[i * r.k], gate: r.gates[i * r.k], margin: m1 - m2, entropy: h };
  });
}

/**
 * Accumulates routing over runs: expert load per layer, co-activation between consecutive MoE layers,
 * and which vocabulary items go to which expert.
 */
export class RoutingStats {
  readonly layers: number[];
  readonly nExpert: number;
  /** load[layer][e] = tokens routed to e */
  readonly load = new Map<number, Float64Array>();
  /** coact[layer][i * E + j]: tokens on i at `layer` and on j at the next MoE layer */
  readonly coact = new Map<number, Float64Array>();
  /** token id -> layer -> expert counts */
  readonly byToken = new Map<number, Map<number, Float64Array>>();
  tokens = 0;

  constructor(info: { layers: { isMoe: boolean }[]; nExpert: number }) {
    this.layers = info.layers.map((l, i) => (l.isMoe ? i : -1)).filter((i) => i >= 0);
    this.nExpert = info.nExpert;
    for (const l of this.layers) {
      this.load.set(l, new Float64Array(this.nExpert));
      this.coact.set(l, new Float64Array(this.nExpert * this.nExpert));
    }
  }

  static of(...traces: Trace[]): RoutingStats {
    const s = new RoutingStats(traces[0].info);
    traces.forEach((t) => s.add(t));
    return s;
  }

  add(trace: Trace): this {
    const E = this.nExpert;
    const per = this.layers.map((l) => trace.routing(l));
    const positions = per[0]?.positions ?? [];
    this.tokens += positions.length;
    per.forEach((r, li) => {
      const layer = this.layers[li];
      const load = this.load.get(layer)!;
      for (let i = 0; i < r.positions.length; i++)
        for (let j = 0; j < r.k; j++) {
          const e = r.experts[i * r.k + j];
          load[e]++;
          const tok = trace.tokens[r.positions[i]];
          let m = this.byToken.get(tok);
          if (!m) this.byToken.set(tok, (m = new Map()));
          let c = m.get(layer);
          if (!c) m.set(layer, (c = new Float64Array(E)));
          c[e]++;
        }
      const next = per[li + 1];
      if (next) {
        const co = this.coact.get(layer)!;
        for (let i = 0; i < r.positions.length; i++) co[r.experts[i * r.k] * E + next.experts[i * next.k]]++;
      }
    });
    return this;
  }

  /** Fraction of tokens on each expert. */
  loadFractions(layer: number): number[] {
    const l = this.load.get(layer)!;
    const n = l.reduce((a, b) => a + b, 0);
    return Array.from(l, (v) => (n ? v / n : 0));
  }

  /** Entropy (nats) of the load distribution: log(E) is perfectly balanced. */
  loadEntropy(layer: number): number {
    return this.loadFractions(layer).reduce((h, p) => (p > 0 ? h - p * Math.log(p) : h), 0);
  }

  /** P(expert j at the next MoE layer | expert i at `layer`), rows normalised. */
  coactivation(layer: number): number[][] {
    const E = this.nExpert, c = this.coact.get(layer)!;
    return Array.from({ length: E }, (_, i) => {
      const row = Array.from(c.subarray(i * E, (i + 1) * E));
      const n = row.reduce((a, b) => a + b, 0);
      return row.map((v) => (n ? v / n : 0));
    });
  }

  /** The vocabulary items most often routed to `expert` in `layer`: [token id, count]. */
  topTokens(layer: number, expert: number, n = 10): [number, number][] {
    const out: [number, number][] = [];
    for (const [tok, m] of this.byToken) {
      const c = m.get(layer)?.[expert] ?? 0;
      if (c > 0) out.push([tok, c]);
    }
    return out.sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n);
  }
}

export interface RoutingFlip {
  layer: number;
  pos: number;
  a: number;
  b: number;
  /** Margin of run a's choice over run b's choice, in run a's logits (when captured). */
  marginA?: number;
}

/**
 * Positions whose top-1 expert differs between two runs of the same tokens (for example BF16 vs
 * Q4_K_M of the same weights, or with and without an intervention), per MoE layer.
 */
export function routingFlips(a: Trace, b: Trace): { flips: RoutingFlip[]; perLayer: Map<number, { flipped: number; total: number }> } {
  const flips: RoutingFlip[] = [];
  const perLayer = new Map<number, { flipped: number; total: number }>();
  const E = a.info.nExpert;
  for (const layer of a.moeLayers) {
    if (!a.has(`blocks.${layer}.mlp.hook_expert_indices`) || !b.has(`blocks.${layer}.mlp.hook_expert_indices`)) continue;
    const ra = a.routing(layer), rb = b.routing(layer);
    let flipped = 0, total = 0;
    ra.positions.forEach((pos, i) => {
      const j = rb.positions.indexOf(pos);
      if (j < 0 || a.tokens[pos] !== b.tokens[pos]) return;
      total++;
      const ea = ra.experts[i * ra.k], eb = rb.experts[j * rb.k];
      if (ea === eb) return;
      flipped++;
      flips.push({ layer, pos, a: ea, b: eb, marginA: ra.logits ? ra.logits[i * E + ea] - ra.logits[i * E + eb] : undefined });
    });
    perLayer.set(layer, { flipped, total });
  }
  return { flips, perLayer };
}
