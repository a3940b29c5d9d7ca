/**
 * moescope: what a notebook cell imports (`import { Model, display } from "moescope"`).
 */
export const version = "0.1.0";
export { Model, nativeSpin } from "./model";
export type { CaptureOptions, Interventions, RunOptions, ModelConfig } from "./model";
export { Trace } from "./trace";
export type { TraceTensor } from "./trace";
export { hooks, resolveHookNames } from "./hooks";
export type { HookName } from "./hooks";
export { applyChatTemplate } from "./chat";
export type { ChatMessage } from "./chat";
export { MoescopeError, CancelledError, CaptureBudgetError } from "./errors";
export { readSafetensors, writeSafetensors } from "./safetensors";
export { setAmbientSignal } from "./cancel";
export * from "./display";
export { RoutingStats, routingFlips, tokenRouting } from "./routing";
export { kvCacheBytes, presetKvShape } from "./memory";
export type { KvShape, KvCacheType } from "./memory";
export { PRESETS as synthPresets } from "./synth";
export type { RoutingFlip, TokenRouting } from "./routing";
export * from "../../widgets/src/index";
export * from "./images";
