/**
 * Hooks are exact, not just present: the ordered hook list and shapes of one forward, analytic
 * identities of the interventions, an expert ablation against a float64 recomputation from the
 * weights, capture during generation against a plain prefill, and the memory budget.
 */
import * as path from "path";
import { beforeAll, describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { CaptureBudgetError } from "../../engine/src/errors";
import { readSafetensors } from "../../engine/src/safetensors";
import { RoutingStats, routingFlips, tokenRouting } from "../../engine/src/routing";
import { expectClose, fixture, prompt, sameInts } from "../helpers";

let scout: Model, maverick: Model;
beforeAll(async () => {
  scout = await Model.load(fixture("tiny-scout", "model.gguf"));
  maverick = await Model.load(fixture("tiny-maverick", "model.gguf"));
});

const bitIdentical = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe("hook names and shapes", () => {
  it("lists every hook point in forward order; MoE-only hooks only on MoE layers", () => {
    const names = maverick.hookNames();
    expect(names[0]).toBe("hook_embed");
    expect(names.slice(-2)).toEqual(["ln_final.hook_normalized", "unembed.hook_out"]);
    const layer0 = names.filter((n) => n.startsWith("blocks.0."));
    expect(layer0).toEqual([
      "blocks.0.hook_resid_pre", "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
      "blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_rot_k", "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_attn_out",
      "blocks.0.hook_resid_mid", "blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post",
    ]);
    expect(names.filter((n) => n.startsWith("blocks.1.mlp."))).toEqual([
      "blocks.1.mlp.hook_router_logits", "blocks.1.mlp.hook_expert_indices", "blocks.1.mlp.hook_expert_weights",
      "blocks.1.mlp.hook_routed_out", "blocks.1.mlp.hook_shared_out",
    ]);
    expect(names).toHaveLength(1 + 4 * 14 + 2 * 5 + 2);
  });

  it("capture 'all' gives every hook with the documented shape", async () => {
    const c = scout.config;
    const tokens = scout.tokenize(prompt("p1"));
    const T = tokens.length, D = c.nEmbd, HD = c.nHead * c.headDim, KD = c.nHeadKv * c.headDim;
    const tr = await scout.run(tokens, { capture: "all" });
    const shape = (n: string): number[] => {
      if (n.endsWith("hook_pattern")) return [c.nHead, T, T];
      if (/hook_(q|rot_q|z)$/.test(n)) return [T, HD];
      if (/hook_(k|v|rot_k)$/.test(n)) return [T, KD];
      if (n.endsWith("router_logits")) return [T, c.nExpert];
      if (/expert_(indices|weights)$/.test(n)) return [T, c.nExpertUsed];
      if (n === "unembed.hook_out") return [T, c.nVocab];
      return [T, D];
    };
    expect(tr.names().sort()).toEqual(scout.hookNames().sort());
    for (const n of scout.hookNames()) expect(tr.get(n).shape, n).toEqual(shape(n));
    // The captured logits equal the returned ones, and the residual stream adds up.
    expect(bitIdentical(tr.get("unembed.hook_out").data.subarray(-c.nVocab) as Float32Array, tr.logits)).toBe(true);
    const pre = tr.get("blocks.2.hook_resid_pre").data, att = tr.get("blocks.2.hook_attn_out").data, mid = tr.get("blocks.2.hook_resid_mid").data;
    for (let i = 0; i < pre.length; i++) expect(mid[i]).toBe(Math.fround(pre[i] + att[i]));
    const sh = tr.get("blocks.2.mlp.hook_shared_out").data, ro = tr.get("blocks.2.mlp.hook_routed_out").data, mo = tr.get("blocks.2.hook_mlp_out").data;
    for (let i = 0; i < sh.length; i++) expect(mo[i]).toBe(Math.fround(sh[i] + ro[i]));
  });

  it("refuses a capture over the memory budget, saying how much it needs", async () => {
    const err = await scout.run(scout.tokenize(prompt("p2")), { capture: "all", captureBudgetBytes: 10_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(CaptureBudgetError);
    expect(err.message).toMatch(/needs [\d.]+ (KiB|MiB)/);
    expect(err.bytes).toBe(scout.estimateCapture("all", scout.tokenize(prompt("p2")).length));
  });

  it("rejects unknown hook names with a hint", async () => {
    await expect(scout.run([1, 2], { capture: ["blocks.9.hook_resid_post"] })).rejects.toThrow(/not a hook point/);
    await expect(scout.run([1, 2], { capture: ["blocks.*.hook_nothing"] })).rejects.toThrow(/matches no hook point/);
  });
});

describe("interventions: analytic identities", () => {
  const tokens = () => scout.tokenize(prompt("p3"));

  it("forcing the natural routing leaves the logits bit-identical", async () => {
    const base = await scout.run(tokens(), { capture: "routing", logitsLast: 60 });
    const forceRoutes = base.moeLayers.flatMap((l) => base.routing(l).positions.map((pos, i) => ({ layer: l, pos, expert: base.routing(l).experts[i] })));
    const forced = await scout.run(tokens(), { interventions: { forceRoutes }, logitsLast: 60 });
    expect(bitIdentical(forced.logits, base.logits)).toBe(true);
    const replayed = await scout.run(tokens(), { interventions: { replayRouting: base }, logitsLast: 60 });
    expect(bitIdentical(replayed.logits, base.logits)).toBe(true);
  });

  it("patching a run's own activations into itself and a zero steering vector change nothing", async () => {
    const t = tokens();
    const base = await scout.run(t, { capture: ["blocks.1.hook_resid_post", "blocks.2.hook_attn_out"], logitsLast: t.length });
    const positions = Array.from({ length: t.length }, (_, i) => i);
    const patched = await scout.run(t, {
      logitsLast: t.length,
      interventions: {
        patch: [
          { name: "blocks.1.hook_resid_post", positions, values: base.get("blocks.1.hook_resid_post").data as Float32Array },
          { name: "blocks.2.hook_attn_out", positions, values: base.get("blocks.2.hook_attn_out").data as Float32Array },
        ],
        steer: [{ layer: 0, vector: new Float32Array(scout.config.nEmbd) }],
      },
    });
    expect(bitIdentical(patched.logits, base.logits)).toBe(true);
    expect(patched.record.interventions).toHaveProperty("patch");
  });

  it("a steering vector changes exactly the residual stream it is added to", async () => {
    const t = tokens();
    const v = Float32Array.from({ length: scout.config.nEmbd }, (_, i) => (i % 3) - 1);
    const base = await scout.run(t, { capture: ["blocks.1.hook_resid_post"] });
    const st = await scout.run(t, { capture: ["blocks.1.hook_resid_post"], interventions: { steer: [{ layer: 1, vector: v, scale: 0.5 }] } });
    const a = base.get("blocks.1.hook_resid_post").data, b = st.get("blocks.1.hook_resid_post").data;
    for (let i = 0; i < a.length; i++) expect(b[i]).toBe(Math.fround(a[i] + 0.5 * v[i % v.length]));
  });

  it("ablating every head of a layer makes its attention output zero", async () => {
    const ablateHeads = Array.from({ length: scout.config.nHead }, (_, h) => ({ layer: 2, head: h }));
    const tr = await scout.run(tokens(), { capture: ["blocks.2.hook_attn_out", "blocks.2.attn.hook_pattern"], interventions: { ablateHeads } });
    expect(tr.get("blocks.2.hook_attn_out").data.every((v) => v === 0)).toBe(true);
    expect(tr.get("blocks.2.attn.hook_pattern").data.some((v) => v > 0)).toBe(true); // patterns are still reported
  });

  it("ablating an expert equals a float64 recomputation with that expert's output removed", async () => {
    const ref = readSafetensors(path.join(__dirname, "..", "fixtures", "ref64", "tiny-scout", "ablate-p1-L1-E1.safetensors")).tensors;
    const t = scout.tokenize(prompt("p1"));
    const tr = await scout.run(t, { capture: ["blocks.*.hook_resid_post", "blocks.1.mlp.hook_routed_out", "routing"], logitsLast: t.length, interventions: { ablateExperts: [{ layer: 1, expert: 1 }] } });
    expectClose("logits", tr.logits, ref.get("logits")!.data, 1e-5);
    for (let l = 0; l < 4; l++) expectClose(`layers.${l}.out`, tr.get(`blocks.${l}.hook_resid_post`).data, ref.get(`layers.${l}.out`)!.data, 1e-5);
    // The trace still says which expert the router chose; the routed output of those tokens is zero.
    const r = tr.routing(1), routed = tr.get("blocks.1.mlp.hook_routed_out").data, D = scout.config.nEmbd;
    r.positions.forEach((pos, i) => {
      if (r.experts[i] === 1) expect(routed.subarray(i * D, (i + 1) * D).every((v) => v === 0)).toBe(true);
    });
    expect(tr.record.interventions).toEqual({ ablateExperts: [{ layer: 1, expert: 1, mode: "zero" }] });
  });

  it("re-routing sends an ablated expert's tokens to their next-best expert", async () => {
    const t = scout.tokenize(prompt("p1"));
    const base = await scout.run(t, { capture: "routing" });
    const rr = await scout.run(t, { capture: "routing", interventions: { ablateExperts: [{ layer: 1, expert: 1, mode: "reroute" }] } });
    const b = base.routing(1), r = rr.routing(1), E = scout.config.nExpert;
    b.positions.forEach((_, i) => {
      const z = Array.from(r.logits!.subarray(i * E, (i + 1) * E));
      const order = z.map((v, e) => [v, e]).sort((x, y) => y[0] - x[0] || x[1] - y[1]).map((x) => x[1]);
      expect(r.experts[i]).toBe(order[0] === 1 ? order[1] : order[0]);
      expect(r.gates[i]).toBeCloseTo(1 / (1 + Math.exp(-z[r.experts[i]])), 6);
    });
  });
});

describe("activation patching between runs", () => {
  it("patching run B's residual into run A at one position makes A's later layers follow B there", async () => {
    const a = scout.tokenize("The quick brown fox jumps");
    const b = a.slice();
    b[3] = (b[3] + 1) % 256; // one token differs
    const names = ["blocks.1.hook_resid_post", "blocks.3.hook_resid_post"];
    const ta = await scout.run(a, { capture: names }), tb = await scout.run(b, { capture: names });
    const last = a.length - 1;
    const patched = await scout.run(a, { capture: names, interventions: { patch: [{ name: "blocks.1.hook_resid_post", positions: [last], from: tb }] } });
    // Layer 1 at the patched position is B's; positions before it are untouched (causal).
    expect(Array.from(patched.row("blocks.1.hook_resid_post", last))).toEqual(Array.from(tb.row("blocks.1.hook_resid_post", last)));
    expect(Array.from(patched.row("blocks.3.hook_resid_post", 1))).toEqual(Array.from(ta.row("blocks.3.hook_resid_post", 1)));
    expect(patched.record.interventions.patch).toEqual([{ name: "blocks.1.hook_resid_post", positions: [last], from: tb.record.model }]);
  });
});

describe("capture during generation", () => {
  it("each generated token's routing and attention row equal a plain prefill of the same tokens", async () => {
    const t = maverick.tokenize(prompt("p1"));
    const gen = await maverick.run(t, { maxNewTokens: 8, stopAtEog: false, capture: { names: ["routing", "blocks.3.attn.hook_pattern"], positions: "last" } });
    expect(gen.get("blocks.1.mlp.hook_expert_indices").positions).toEqual(Array.from({ length: 9 }, (_, i) => t.length - 1 + i));
    const all = gen.tokens;
    const pre = await maverick.run(all, { capture: { names: ["routing", "blocks.3.attn.hook_pattern"], positions: { begin: t.length - 1 } } });
    for (const l of [1, 3]) {
      sameInts(`layer ${l} experts`, gen.routing(l).experts, pre.routing(l).experts);
      expectClose(`layer ${l} router logits`, gen.routing(l).logits!, pre.routing(l).logits!, 1e-5);
    }
    const a = gen.get("blocks.3.attn.hook_pattern"), b = pre.get("blocks.3.attn.hook_pattern");
    expect(a.shape).toEqual(b.shape);
    // Decode (one row at a time) and prefill (token tiles) sum in different orders: float32 rounding
    // only, amplified by Maverick's un-normalised q·k on this NoPE layer.
    expectClose("pattern rows", a.data, b.data, 1e-5, "max");
  });
});

describe("routing statistics", () => {
  it("load, entropy, margins, co-activation, token counts and flips", async () => {
    const t1 = await maverick.run(maverick.tokenize(prompt("p1")), { capture: "routing" });
    const t2 = await maverick.run(maverick.tokenize(prompt("p3")), { capture: "routing" });
    const s = RoutingStats.of(t1, t2);
    expect(s.layers).toEqual([1, 3]);
    for (const l of s.layers) {
      const f = s.loadFractions(l);
      expect(f.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      expect(s.loadEntropy(l)).toBeGreaterThan(0);
      expect(s.loadEntropy(l)).toBeLessThanOrEqual(Math.log(128) + 1e-12);
    }
    const co = s.coactivation(1);
    const n = t1.nPrompt + t2.nPrompt;
    const used = co.filter((row) => row.some((v) => v > 0));
    used.forEach((row) => expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12));
    // Counting by hand: tokens on expert e in layer 1 of both runs.
    const e = t1.routing(1).experts[0];
    const byHand = [t1, t2].reduce((c, t) => c + Array.from(t.routing(1).experts).filter((x) => x === e).length, 0);
    expect(s.load.get(1)![e]).toBe(byHand);
    expect(s.topTokens(1, e, 3)[0][1]).toBeGreaterThan(0);
    expect(s.tokens).toBe(n);
    const tr = tokenRouting(t1, 1);
    tr.forEach((x) => {
      expect(x.margin).toBeGreaterThanOrEqual(0);
      expect(x.entropy).toBeLessThanOrEqual(Math.log(128) + 1e-9);
    });
    const same = routingFlips(t1, t1);
    expect([...same.perLayer.values()].every((v) => v.flipped === 0)).toBe(true);
    const forced = await maverick.run(t1.tokens, { capture: "routing", interventions: { forceRoutes: [{ layer: 1, pos: 5, expert: (t1.routing(1).experts[5] + 1) % 128 }] } });
    const f = routingFlips(t1, forced);
    expect(f.flips.find((x) => x.layer === 1 && x.pos === 5)).toBeDefined();
  });
});
