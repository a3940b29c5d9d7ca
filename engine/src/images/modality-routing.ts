/**
 * Routing meets vision: which experts image tokens use versus text tokens, per MoE layer. Image
 * tokens are the `<|patch|>` positions (their embeddings came from the vision tower); every other
 * prompt position (including image markup such as <|image_start|>) counts as text. Counts are over
 * every routed slot (top-k), so they add up to tokens·k.
 */
import { MoescopeError } from "../errors";
import type { Trace } from "../trace";

export interface ModalityRouting {
  layer: number;
  /** [E] routed slots of image / text tokens per expert. */
  image: Int32Array;
  text: Int32Array;
  /** [E] shares (each sums to 1 over experts). */
  imageShare: Float32Array;
  textShare: Float32Array;
  /** Total variation distance between the two distributions (0 = same experts, 1 = disjoint). */
  divergence: number;
}

export function routingByModality(trace: Trace, imagePositions: ArrayLike<number>, opts: { promptOnly?: boolean } = {}): ModalityRouting[] {
  const isImage = new Set(Array.from(imagePositions));
  const E = trace.info.nExpert;
  const out: ModalityRouting[] = [];
  for (const layer of trace.moeLayers) {
    if (!trace.has(`blocks.${layer}.mlp.hook_expert_indices`)) throw new MoescopeError(`routing by modality needs the routing of layer ${layer}: capture "routing"`, "CAPTURE_MISSING");
    const r = trace.routing(layer);
    const image = new Int32Array(E), text = new Int32Array(E);
    r.positions.forEach((p, i) => {
      if (opts.promptOnly !== false && p >= trace.nPrompt) return;
      for (let j = 0; j < r.k; j++) (isImage.has(p) ? image : text)[r.experts[i * r.k + j]]++;
    });
    const ni = image.reduce((a, b) => a + b, 0), nt = text.reduce((a, b) => a + b, 0);
    const imageShare = Float32Array.from(image, (v) => (ni ? v / ni : 0));
    const textShare = Float32Array.from(text, (v) => (nt ? v / nt : 0));
    let tv = 0;
    for (let e = 0; e < E; e++) tv += Math.abs(imageShare[e] - textShare[e]);
    out.push({ layer, image, text, imageShare, textShare, divergence: tv / 2 });
  }
  return out;
}
