/**
 * Live generation: tokens appear in one output as they are generated, each with its chosen experts,
 * and the output is replaced in place (display(...).update) rather than appended.
 *
 * The engine streams tokens but not captures, so a token's experts are known only once the model has
 * read it. Two modes:
 *   "stream" (default for big models): one run; tokens appear live, their experts are filled in when
 *            the run ends.
 *   "step"   (default for small models): one run per token over the growing text, capturing routing
 *            at the last position only, so each token shows its experts one step after it appears.
 *            It re-reads the prefix every step (cost grows with length): meant for small models.
 * Updates are HTML + text only (cheap, no PNG), at most every `minIntervalMs`; the final update is a
 * full View with its static image.
 */
import { display, DisplayHandle, bundle } from "../../engine/src/display";
import type { Model, RunOptions } from "../../engine/src/model";
import type { Trace } from "../../engine/src/trace";
import { expertColor, rgbToHex, tint } from "./color";
import { tokensSvg, visible } from "./png";
import { htmlEsc } from "./select";
import { makeView, View } from "./view";

interface LiveToken {
  text: string;
  /** MoE layer -> [expert, gate] of the token's top-1 choice, once known. */
  experts?: Map<number, [number, number]>;
  generated: boolean;
}

export interface LiveGenerationOptions extends Omit<RunOptions, "onToken" | "capture"> {
  /** The MoE layer whose expert tints each token (default: the middle MoE layer). */
  layer?: number;
  mode?: "stream" | "step";
  minIntervalMs?: number;
  /** Show the prompt's tokens too (default true; long prompts show their last 200). */
  showPrompt?: boolean;
}

function render(tokens: LiveToken[], layer: number, status: string): { html: string; text: string } {
  const spans = tokens.map((t) => {
    const e = t.experts?.get(layer);
    const bg = e ? tint(expertColor(e[0]), 0.25 + 0.75 * e[1]) : ([240, 240, 240] as [number, number, number]);
    const all = t.experts ? [...t.experts.entries()].map(([l, [x, g]]) => `L${l}: e${x} (${g.toFixed(2)})`).join("\n") : "experts pending";
    const sub = t.experts ? [...t.experts.values()].map(([x]) => x).join("·") : "…";
    return `<span class="moescope-tok" style="background:${rgbToHex(bg)};${t.generated ? "border-bottom:2px solid #111" : "opacity:.75"}" title="${htmlEsc(all)}">${htmlEsc(visible(t.text))}<small>${htmlEsc(sub)}</small></span>`;
  });
  const gen = tokens.filter((t) => t.generated);
  const html = `<div class="moescope-live" style="font-family:'DejaVu Sans',Arial,sans-serif">` +
    `<div style="font-size:12px;color:#444;margin-bottom:3px">${htmlEsc(status)} · tint = expert at layer ${layer}; under each token: its top-1 expert in every MoE layer</div>` +
    `<div style="line-height:2.4;max-width:900px">${spans.join("")}</div></div>` +
    `<style>.moescope-tok{font-family:"DejaVu Sans Mono",monospace;white-space:pre;border-radius:3px;padding:1px 2px;margin:1px;display:inline-block}.moescope-tok small{display:block;font-size:9px;color:#555;text-align:center}</style>`;
  const text = `${status}: ` + gen.map((t) => visible(t.text) + (t.experts?.get(layer) ? `[e${t.experts.get(layer)![0]}]` : "")).join(" ");
  return { html, text };
}

function routingAt(trace: Trace, pos: number, layers: number[]): Map<number, [number, number]> {
  const m = new Map<number, [number, number]>();
  for (const l of layers) {
    if (!trace.has(`blocks.${l}.mlp.hook_expert_indices`)) continue;
    const r = trace.routing(l);
    const i = r.positions.indexOf(pos);
    if (i >= 0) m.set(l, [r.experts[i * r.k], r.gates[i * r.k]]);
  }
  return m;
}

/**
 * Generates from `prompt`, showing tokens and their experts live in one output; resolves to the
 * trace of the whole text (routing captured) and the final view.
 */
export async function liveGeneration(model: Model, prompt: string | Int32Array | number[], opts: LiveGenerationOptions = {}): Promise<{ trace: Trace; text: string; view: View }> {
  const layers = model.config.layers.map((l, i) => (l.isMoe ? i : -1)).filter((i) => i >= 0);
  const layer = opts.layer ?? layers[Math.floor(layers.length / 2)] ?? 0;
  const maxNew = opts.maxNewTokens ?? 32;
  const promptIds = typeof prompt === "string" ? model.tokenize(prompt) : prompt instanceof Int32Array ? prompt : Int32Array.from(prompt);
  const small = model.config.activeBytesPerToken * (promptIds.length + maxNew) < 2e9;
  const mode = opts.mode ?? (small ? "step" : "stream");
  const shownFrom = opts.showPrompt === false ? promptIds.length : Math.max(0, promptIds.length - 200);
  const toks: LiveToken[] = model.tokenStrings(promptIds.subarray(shownFrom)).map((text) => ({ text, generated: false }));
  const interval = opts.minIntervalMs ?? 100;
  const show = (status: string) => {
    const r = render(toks, layer, status);
    return bundle({ "text/html": r.html, "text/plain": r.text });
  };
  const handle: DisplayHandle = display(show(`generating (${mode})…`));
  let last = 0;
  const refresh = (status: string, force = false) => {
    const now = Date.now();
    if (!force && now - last < interval) return;
    last = now;
    handle.update(show(status));
  };
  const { layer: _l, mode: _m, minIntervalMs: _i, showPrompt: _s, ...runOpts } = opts;
  let trace: Trace;
  if (mode === "stream") {
    trace = await model.run(promptIds, {
      ...runOpts, maxNewTokens: maxNew, capture: "routing",
      onToken: (t) => {
        toks.push({ text: t.text, generated: true });
        refresh(`generating: ${t.index + 1} / ${maxNew} tokens`);
      },
    });
  } else {
    let ids = Array.from(promptIds);
    let pending: LiveToken | undefined;
    for (let step = 0; step <= maxNew; step++) {
      // The last step only reads the final token (to learn its experts); it generates nothing.
      const gen = step < maxNew ? 1 : 0;
      // Each step samples once, so with temperature > 0 the seed moves per step (a different stream from one long run).
      const r = await model.run(Int32Array.from(ids), { ...runOpts, seed: (runOpts.seed ?? 0) + step, maxNewTokens: gen, capture: { names: "routing", positions: "last" } });
      const pos = ids.length - 1;
      const routed = routingAt(r, pos, layers);
      if (pending) pending.experts = routed;
      else if (toks.length && pos >= shownFrom) toks[pos - shownFrom].experts = routed;
      if (!gen || r.generated.length === 0 || (r.stopReason !== "length" && r.generated.length === 0)) break;
      const id = r.generated[0];
      pending = { text: model.tokenStrings([id])[0], generated: true };
      toks.push(pending);
      ids.push(id);
      refresh(`generating: ${step + 1} / ${maxNew} tokens`);
      if (r.stopReason === "eog") {
        // The end-of-generation token is not read back; its experts stay unknown.
        break;
      }
    }
    // One final pass over the whole text gives the returned trace full routing for every token.
    trace = await model.run(Int32Array.from(ids), { maxNewTokens: 0, capture: "routing" });
  }
  // Fill every token's experts from the final trace (in stream mode this is when they appear).
  const nAll = trace.tokens.length;
  for (let p = shownFrom; p < nAll && p - shownFrom < toks.length; p++) {
    const m = routingAt(trace, p, layers);
    if (m.size) toks[p - shownFrom].experts = m;
  }
  const genCount = toks.filter((t) => t.generated).length;
  const status = `generated ${genCount} tokens (${mode} mode)`;
  const final = render(toks, layer, status);
  const { svg, height } = tokensSvg(`Generation: tokens tinted by expert at layer ${layer}`, toks.slice(-300).map((t) => {
    const e = t.experts?.get(layer);
    return { text: t.text, bg: e ? tint(expertColor(e[0]), 0.25 + 0.75 * e[1]) : ([240, 240, 240] as [number, number, number]), sub: t.experts ? [...t.experts.values()].map(([x]) => x).join("·") : "", outline: t.generated };
  }), 900);
  const view = await makeView({ kind: "live-generation", title: "generation", svg, width: 900, height, body: final.html, text: final.text });
  handle.update(view);
  const genIds = mode === "stream" ? trace.generated : trace.tokens.subarray(promptIds.length);
  return { trace, text: model.decode(genIds), view };
}
