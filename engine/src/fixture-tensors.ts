// The golden fixtures' tensor names (layers.L.out, layers.L.attn_probs, ...; see tests/fixtures/golden)
// from a Trace's hook tensors: what `moescope trace` writes and what the golden tests and the device
// check compare. Kept apart from cli.ts so that tools without node_modules (the GPU machine's check)
// can load it.
import type { TensorOut } from "./safetensors";
import type { Trace } from "./trace";

/** Fixture names (layers.L.*) from hook tensors, restricted to the prompt rows. */
export function fixtureTensors(trace: Trace): TensorOut[] {
  const n = trace.nPrompt;
  const out: TensorOut[] = [];
  const rows = (name: string) => {
    const t = trace.get(name);
    const len = t.data.length / t.positions.length;
    const first = t.positions.indexOf(0);
    return { t, len, data: t.data.subarray(first * len, (first + n) * len) };
  };
  const full = (name: string) => trace.has(name) && trace.get(name).positions[0] === 0 && trace.get(name).positions.length >= n;
  if (full("ln_final.hook_normalized")) {
    const t = trace.get("ln_final.hook_normalized");
    const m = trace.logitsRows;
    const len = trace.info.nEmbd;
    const first = t.positions.indexOf(n - m);
    if (first >= 0) out.push({ name: "final_norm", dtype: "F32", shape: [m, len], data: t.data.subarray(first * len, (first + m) * len) as Float32Array });
  }
  for (let l = 0; l < trace.info.nLayer; l++) {
    const p = `blocks.${l}`;
    if (full(`${p}.hook_resid_post`)) out.push({ name: `layers.${l}.out`, dtype: "F32", shape: [n, trace.info.nEmbd], data: rows(`${p}.hook_resid_post`).data as Float32Array });
    if (full(`${p}.mlp.hook_router_logits`)) out.push({ name: `layers.${l}.router_logits`, dtype: "F32", shape: [n, trace.info.nExpert], data: rows(`${p}.mlp.hook_router_logits`).data as Float32Array });
    if (full(`${p}.mlp.hook_expert_indices`)) {
      const k = trace.info.nExpertUsed;
      out.push({ name: `layers.${l}.topk`, dtype: "I32", shape: [n, k], data: rows(`${p}.mlp.hook_expert_indices`).data as Int32Array });
      out.push({ name: `layers.${l}.gate`, dtype: "F32", shape: [n, k], data: rows(`${p}.mlp.hook_expert_weights`).data as Float32Array });
    }
    if (full(`${p}.attn.hook_pattern`)) {
      const t = trace.get(`${p}.attn.hook_pattern`);
      const [H, R, S] = t.shape;
      const probs = new Float32Array(H * n * n);
      for (let h = 0; h < H; h++) for (let q = 0; q < n; q++) probs.set(t.data.subarray((h * R + q) * S, (h * R + q) * S + n), (h * n + q) * n);
      out.push({ name: `layers.${l}.attn_probs`, dtype: "F32", shape: [H, n, n], data: probs });
    }
  }
  return out;
}

/** The hooks a fixture's tensors come from (`moescope trace --capture all`). */
export const FIXTURE_HOOKS = ["blocks.*.hook_resid_post", "routing", "blocks.*.attn.hook_pattern", "ln_final.hook_normalized"];
