/**
 * Hook-point names (native/src/hooks/hooks.h is the source; the model lists the ones it has with
 * `model.hookNames()`). TransformerLens names where the meaning matches, Llama 4 additions under `mlp.`.
 *
 * Legend: T tokens, D hidden, H heads, Hkv kv heads, Dh head dim, E experts, K experts/token, V vocab, S key positions.
 *
 *   hook_embed                         [T, D]
 *   blocks.{l}.hook_resid_pre          [T, D]
 *   blocks.{l}.ln1.hook_normalized     [T, D]
 *   blocks.{l}.attn.hook_q|hook_k|hook_v        [T, H*Dh] / [T, Hkv*Dh]  projections before RoPE
 *   blocks.{l}.attn.hook_rot_q|hook_rot_k      as they enter q·k (after RoPE + QK-norm, or temperature scaling)
 *   blocks.{l}.attn.hook_pattern       [H, T, S]  probabilities after the real (chunked or causal) mask
 *   blocks.{l}.attn.hook_z             [T, H*Dh]  per-head outputs before o_proj
 *   blocks.{l}.hook_attn_out           [T, D]
 *   blocks.{l}.hook_resid_mid          [T, D]
 *   blocks.{l}.ln2.hook_normalized     [T, D]
 *   blocks.{l}.mlp.hook_router_logits  [T, E]   (MoE layers)
 *   blocks.{l}.mlp.hook_expert_indices [T, K]   int32
 *   blocks.{l}.mlp.hook_expert_weights [T, K]   sigmoid(logit) of each chosen expert: it scales the expert's INPUT
 *   blocks.{l}.mlp.hook_routed_out     [T, D]
 *   blocks.{l}.mlp.hook_shared_out     [T, D]
 *   blocks.{l}.hook_mlp_out            [T, D]
 *   blocks.{l}.hook_resid_post         [T, D]
 *   ln_final.hook_normalized           [T, D]
 *   unembed.hook_out                   [T, V]   logits
 */
export type HookName =
  | "hook_embed"
  | "ln_final.hook_normalized"
  | "unembed.hook_out"
  | `blocks.${number}.${
      | "hook_resid_pre"
      | "hook_resid_mid"
      | "hook_resid_post"
      | "hook_attn_out"
      | "hook_mlp_out"
      | "ln1.hook_normalized"
      | "ln2.hook_normalized"
      | `attn.hook_${"q" | "k" | "v" | "rot_q" | "rot_k" | "pattern" | "z"}`
      | `mlp.hook_${"router_logits" | "expert_indices" | "expert_weights" | "routed_out" | "shared_out"}`}`;

/** Builders, so that a typo is a type error rather than an empty capture. */
export const hooks = {
  embed: "hook_embed" as HookName,
  residPre: (l: number) => `blocks.${l}.hook_resid_pre` as HookName,
  residMid: (l: number) => `blocks.${l}.hook_resid_mid` as HookName,
  residPost: (l: number) => `blocks.${l}.hook_resid_post` as HookName,
  attnOut: (l: number) => `blocks.${l}.hook_attn_out` as HookName,
  mlpOut: (l: number) => `blocks.${l}.hook_mlp_out` as HookName,
  pattern: (l: number) => `blocks.${l}.attn.hook_pattern` as HookName,
  z: (l: number) => `blocks.${l}.attn.hook_z` as HookName,
  routerLogits: (l: number) => `blocks.${l}.mlp.hook_router_logits` as HookName,
  expertIndices: (l: number) => `blocks.${l}.mlp.hook_expert_indices` as HookName,
  expertWeights: (l: number) => `blocks.${l}.mlp.hook_expert_weights` as HookName,
  routedOut: (l: number) => `blocks.${l}.mlp.hook_routed_out` as HookName,
  sharedOut: (l: number) => `blocks.${l}.mlp.hook_shared_out` as HookName,
  lnFinal: "ln_final.hook_normalized" as HookName,
  logits: "unembed.hook_out" as HookName,
};

/** Routing quantities of every MoE layer: cheap, and what most analyses start from. */
export const ROUTING_HOOKS = ["mlp.hook_router_logits", "mlp.hook_expert_indices", "mlp.hook_expert_weights"];

/**
 * Expands capture names against the model's hook list. Each entry is an exact hook name or a pattern
 * in which `*` matches one dotted segment or part of it (`blocks.*.hook_resid_post`,
 * `blocks.3.attn.*`). Presets: "routing", "all", "none". Unknown names throw, listing close matches.
 */
export function resolveHookNames(spec: readonly string[] | string, available: readonly string[]): string[] {
  const entries = typeof spec === "string" ? spec.split(",").map((s) => s.trim()).filter(Boolean) : [...spec];
  const chosen = new Set<string>();
  for (const e of entries) {
    if (e === "none") continue;
    if (e === "all") {
      available.forEach((n) => chosen.add(n));
      continue;
    }
    if (e === "routing") {
      available.filter((n) => ROUTING_HOOKS.some((r) => n.endsWith(r))).forEach((n) => chosen.add(n));
      continue;
    }
    if (!e.includes("*")) {
      if (!available.includes(e)) {
        const hint = available.filter((n) => n.endsWith(e.split(".").pop() ?? "")).slice(0, 3);
        throw new Error(`"${e}" is not a hook point of this model${hint.length ? ` (did you mean ${hint.join(", ")}?)` : ""}; see model.hookNames()`);
      }
      chosen.add(e);
      continue;
    }
    const re = new RegExp("^" + e.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]*") + "$");
    const hits = available.filter((n) => re.test(n));
    if (hits.length === 0) throw new Error(`capture pattern "${e}" matches no hook point of this model; see model.hookNames()`);
    hits.forEach((n) => chosen.add(n));
  }
  return available.filter((n) => chosen.has(n)); // forward order
}
