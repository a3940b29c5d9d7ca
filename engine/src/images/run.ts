/**
 * One call for a notebook: run the text model on a prompt with images. The prompt's `<|image|>`
 * placeholders (e.g. from `imageChat`) are expanded, the images encoded by the vision tower, their
 * features spliced at the `<|patch|>` positions, and the run's Trace returned together with the
 * inputs (plans, patch positions, pixel values) that grounding maps and views need.
 */
import type { Model, RunOptions } from "../model";
import type { Trace } from "../trace";
import type { ImageInput } from "./decode";
import { visionTraceInputs, VisionTraceInputs, VisionTraceOptions } from "./trace-inputs";

export async function runWithImages(
  model: Model,
  prompt: string | Int32Array,
  images: ImageInput | ImageInput[],
  opts: RunOptions & Pick<VisionTraceOptions, "mmproj" | "maxTiles" | "maxPixels" | "resample"> & { visionCapture?: string | string[] } = {},
): Promise<{ trace: Trace; inputs: VisionTraceInputs }> {
  const { mmproj, maxTiles, maxPixels, resample, visionCapture, ...run } = opts;
  const inputs = await visionTraceInputs(model, { prompt, images, mmproj, maxTiles, maxPixels, resample, capture: visionCapture ?? "none", signal: run.signal });
  const trace = await model.run(inputs.tokens, { ...run, embedOverride: inputs.embedOverride });
  return { trace, inputs };
}
