/**
 * The image path (issue 7): preprocessing (plan, decode, resample, tiles), prompt layout, the vision
 * tower, trace inputs, geometry, grounding maps, rendering and modality routing.
 */
export { planImage, planFromGrid, parseGrid, candidateGrids } from "./plan";
export type { ImagePlan, ImagePlanOptions } from "./plan";
export { decodeImage, imageInfo, DEFAULT_MAX_PIXELS } from "./decode";
export type { ImageInput, RgbImage, DecodeOptions } from "./decode";
export { preprocessImage, tilesFromPixels } from "./preprocess";
export type { PreprocessedImage, PreprocessOptions } from "./preprocess";
export { resizeBilinear, resizeBilinearF64 } from "./resample";
export { imageTokenIds, imageBlock, expandImagePlaceholders, imageChat } from "./prompt";
export type { ImageTokenIds, ExpandedPrompt, ImageSpan, ImageChatMessage } from "./prompt";
export { VisionModel } from "./vision";
export type { VisionInfo, VisionOutput, VisionTensor } from "./vision";
export { visionTraceInputs, visionFor } from "./trace-inputs";
export type { VisionTraceInputs, VisionTraceOptions } from "./trace-inputs";
export { imageTokenGeometry } from "./geometry";
export type { ImageTokenGeometry, Rect } from "./geometry";
export { attentionToImage, attentionRollout, occlusionMap } from "./grounding";
export type { ImageAttention, OcclusionMap, OcclusionOptions } from "./grounding";
export { heatmapOverlay, tileView, groundingHtml } from "./render";
export { routingByModality } from "./modality-routing";
export type { ModalityRouting } from "./modality-routing";
export { groundingView } from "./view";
export type { GroundingViewOptions } from "./view";
export { runWithImages } from "./run";
