/**
 * moescope views: one call on a Trace gives a displayable View (see view.ts for the MIME bundle it
 * emits and how it renders in each frontend). Re-exported from the package entry, so cells write
 * `import { routingGrid } from "moescope"` and end with `await routingGrid(trace)`.
 *
 *   routing      routingGrid, routerLogits, expertText, expertLoad, coactivation   (capture "routing")
 *   attention    attentionHeads, attentionHead, attentionText        (capture "blocks.*.attn.hook_pattern")
 *   activations  residualNorms ("blocks.*.hook_resid_post"), logitLens(model, trace), compareTraces(a, b)
 *   generation   liveGeneration(model, prompt, opts)   tokens and experts live, one output updated in place
 *   linked       linkedView(trace)    text, routing chart, attention row and routing detail, click to select
 *   plotly.js    plotlyInit()         ships the library again if the output that carried it was cleared
 *
 * This module imports engine modules directly, never engine/src/index.ts (which re-exports it).
 */
export { View, makeView } from "./view";
export type { ViewSpec } from "./view";
export { routingGrid, routerLogits, expertText, expertLoad, coactivation } from "./routing";
export type { RoutingOptions } from "./routing";
export { plotlyInit, resetPlotlyShipped } from "./init";
export { attentionHeads, attentionHead, attentionText, layerKind } from "./attention";
export { residualNorms, logitLens, computeLogitLens, compareTraces } from "./activations";
export type { LensResult } from "./activations";
export { liveGeneration } from "./generation";
export type { LiveGenerationOptions } from "./generation";
export { linkedView } from "./linked";
export type { LinkedOptions } from "./linked";
