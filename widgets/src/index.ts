/**
 * moescope views: one call on a Trace gives a displayable View (see view.ts for what it emits).
 * Re-exported from the package entry, so cells write `import { routingGrid } from "moescope"`.
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
