/**
 * The CUDA backend (issue 9) computes the same function as the CPU path, with the same hooks and
 * interventions. On a GPU machine (native/tools/device-check.sh): every fixture model, prompt prefill
 * plus greedy decode with capture "all", compared hook by hook against the CPU run, then every kind of
 * intervention, a long prompt across chunk boundaries, and cancellation. On a machine without a GPU
 * those tests are skipped (and counted), and the device selection rules are checked instead.
 */
import { describe, expect, it } from "vitest";
import { Model, RunOptions } from "../../engine/src/model";
import { addon } from "../../engine/src/native";
import { Trace } from "../../engine/src/trace";
import { expectClose, fixture, prompt, sameInts } from "../helpers";

const status = (() => {
  try {
    return addon().cudaStatus();
  } catch {
    return { compiled: false, devices: 0 };
  }
})();
const hasCuda = status.compiled && status.devices > 0;

describe.runIf(!hasCuda)("device selection without a GPU", () => {
  it('"auto" falls back to the CPU; "cuda" is a clear error', async () => {
    const path = fixture("tiny-scout", "model.gguf");
    const m = await Model.load(path, { device: "auto" });
    expect(m.config.device).toBe("cpu");
    await expect(Model.load(path, { device: "cuda" })).rejects.toMatchObject({
      code: status.compiled ? "CUDA_NO_DEVICE" : "CUDA_NOT_COMPILED",
    });
    await expect(Model.load(path, { device: "tpu" as never })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
  });
});

// Tolerances: F32/F16/BF16 fixtures as the CPU's own (1e-5 relative on logits, tests/golden/text.test.ts);
// quantized ones 1e-4 (the CPU path is itself within 1e-4 of ref64 on the dequantised weights).
const MODELS: [string, number][] = [
  ["tiny-scout", 1e-5], ["tiny-scout-f16", 1e-5], ["tiny-scout-bf16", 1e-5], ["tiny-maverick", 1e-5],
  ["tiny-scout-q8_0", 1e-4], ["small-scout-Q8_0", 1e-4], ["small-scout-Q6_K", 1e-4], ["small-scout-Q4_K_M", 1e-4],
];

function compareTraces(what: string, a: Trace, b: Trace, tol: number): void {
  sameInts(`${what}: tokens`, b.tokens, a.tokens);
  if (a.logits.length) expectClose(`${what}: logits`, b.logits, a.logits, tol);
  expect(b.names().sort()).toEqual(a.names().sort());
  for (const n of a.names()) {
    const x = a.get(n), y = b.get(n);
    expect(y.shape, n).toEqual(x.shape);
    expect(y.positions, n).toEqual(x.positions);
    if (x.dtype === "i32") sameInts(`${what}: ${n}`, y.data, x.data);
    else if (/hook_pattern/.test(n)) expectClose(`${what}: ${n}`, y.data, x.data, 1e-5, "max");
    else if (x.data.every((v) => v === 0)) expectClose(`${what}: ${n}`, y.data, x.data, 1e-6, "max");
    else expectClose(`${what}: ${n}`, y.data, x.data, tol);
  }
}

describe.runIf(hasCuda)("CUDA matches the CPU", () => {
  for (const [name, tol] of MODELS) {
    it(`${name}: prefill + greedy decode, every hook`, async () => {
      const path = fixture(name, "model.gguf");
      const cpu = await Model.load(path, { device: "cpu" });
      const gpu = await Model.load(path, { device: "cuda" });
      expect(gpu.config.device).toBe("cuda");
      for (const p of ["p1", "p3"]) {
        const opts: RunOptions = { capture: "all", maxNewTokens: 4, temperature: 0, logitsLast: 3 };
        compareTraces(`${name}/${p}`, await cpu.run(prompt(p), opts), await gpu.run(prompt(p), opts), tol);
      }
    }, 300_000);
  }

  it("interventions: ablate (zero, reroute), force route, router bias, steer, patch, head ablation, replay", async () => {
    const path = fixture("tiny-scout", "model.gguf");
    const cpu = await Model.load(path, { device: "cpu" });
    const gpu = await Model.load(path, { device: "cuda" });
    const E = cpu.config.nExpert, D = cpu.config.nEmbd;
    const moe = cpu.layerPlan.map((l, i) => (l.isMoe ? i : -1)).filter((i) => i >= 0);
    const L = moe[0];
    const base = await cpu.run(prompt("p1"), { capture: ["routing", `blocks.${L}.hook_resid_mid`] });
    const cases: [string, RunOptions["interventions"]][] = [
      ["ablate zero", { ablateExperts: [{ layer: L, expert: 0 }, { layer: L, expert: 1 % E }] }],
      ["ablate reroute", { ablateExperts: [{ layer: L, expert: 0, mode: "reroute" }, { layer: L, expert: 1 % E, mode: "reroute" }] }],
      ["force route", { forceRoutes: [{ layer: L, pos: -1, expert: E - 1 }, { layer: L, pos: 2, expert: 0 }] }],
      ["router bias", { routerBias: [{ layer: L, bias: Array.from({ length: E }, (_, e) => (e % 3) * 0.7) }] }],
      ["steer", { steer: [{ layer: 0, vector: Array.from({ length: D }, (_, i) => Math.sin(i)), scale: 2, positions: { begin: 1, end: 4 } }] }],
      ["patch", { patch: [{ name: `blocks.${L}.hook_resid_mid`, positions: [1, 2], values: new Float32Array(2 * D).fill(0.25) }] }],
      ["head ablation", { ablateHeads: [{ layer: 0, head: 0 }, { layer: L, head: cpu.config.nHead - 1 }] }],
      ["replay", { replayRouting: base }],
    ];
    for (const [what, iv] of cases) {
      const opts: RunOptions = { capture: "all", maxNewTokens: 3, temperature: 0, interventions: iv };
      compareTraces(what, await cpu.run(prompt("p1"), opts), await gpu.run(prompt("p1"), opts), 1e-5);
    }
  }, 300_000);

  it("a long prompt across chunk boundaries (chunk-aware device KV cache), capture of the last rows", async () => {
    for (const name of ["tiny-scout", "tiny-maverick"]) {
      const path = fixture(name, "model.gguf");
      const cpu = await Model.load(path, { device: "cpu" });
      const gpu = await Model.load(path, { device: "cuda" });
      const opts: RunOptions = { capture: { names: "all", positions: "last" }, maxNewTokens: 8, temperature: 0, logitsLast: 4 };
      compareTraces(`${name}/long`, await cpu.run(prompt("p_long"), opts), await gpu.run(prompt("p_long"), opts), 1e-5);
    }
  }, 300_000);

  it("a BF16 KV cache rounds as the CPU's does (same bits in, same function out)", async () => {
    const path = fixture("tiny-scout", "model.gguf");
    const cpu = await Model.load(path, { device: "cpu" });
    const gpu = await Model.load(path, { device: "cuda" });
    const opts: RunOptions = { capture: "all", maxNewTokens: 8, temperature: 0, logitsLast: 4, kvCache: "bf16" };
    compareTraces("bf16 kv/long", await cpu.run(prompt("p_long"), opts), await gpu.run(prompt("p_long"), opts), 1e-5);
  }, 300_000);

  it("cancellation stops a CUDA run with CANCELLED", async () => {
    const gpu = await Model.load(fixture("tiny-scout", "model.gguf"), { device: "cuda" });
    const ac = new AbortController();
    const run = gpu.run(prompt("p_long"), { maxNewTokens: 2000, stopAtEog: false, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(run).rejects.toMatchObject({ code: "CANCELLED" });
    // The model still works after a cancelled run.
    const t = await gpu.run(prompt("p1"), { maxNewTokens: 2, temperature: 0 });
    expect(t.generated.length).toBe(2);
  }, 120_000);
});
