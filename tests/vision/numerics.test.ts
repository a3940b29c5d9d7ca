/**
 * The vision path against the float64 goldens of tiny-vision (tests/fixtures/golden/README.md,
 * "Vision"), from hf/ AND from model.gguf + mmproj.gguf:
 *  - with the golden's exact pixel values (`--pixel-values`): every vision tensor, image_embeds, the
 *    multimodal logits and layers.L.out / layers.L.router_logits within 1e-5 relative error, prompt
 *    tokens and the 16 greedy tokens identical;
 *  - with the PNG images: non-resized tiles' pixel values bit-exact, the thumbnail within one grey
 *    level, and (img1, no resize) the whole run as above.
 */
import * as fs from "fs";
import { beforeAll, describe, expect, it } from "vitest";
import { fixtureTensors } from "../../engine/src/fixture-tensors";
import { visionTraceInputs } from "../../engine/src/images/trace-inputs";
import { Model } from "../../engine/src/model";
import { expectClose, fixture, golden, prompt, sameInts } from "../helpers";

const VISION_TENSORS = ["vision.layers.0.out", "vision.layers.1.out", "vision.post_ln", "vision.pixel_shuffle", "vision.adapter"];
const CASES = [
  { g: "golden-img1", grid: "1x1", image: "img336x336.png" },
  { g: "golden-img2", grid: "1x2", image: "img336x672.png" },
];

for (const format of ["hf", "gguf"] as const) {
  describe(`tiny-vision (${format === "hf" ? "hf/" : "model.gguf + mmproj.gguf"})`, () => {
    let model: Model;
    const mmproj = format === "gguf" ? fixture("tiny-vision", "mmproj.gguf") : undefined;
    beforeAll(async () => {
      model = await Model.load(format === "hf" ? fixture("tiny-vision", "hf") : fixture("tiny-vision", "model.gguf"));
    });

    for (const c of CASES) {
      it(`${c.g}, pixel values: vision tensors, image_embeds, logits, layers, greedy`, async () => {
        const g = golden("tiny-vision", c.g);
        const inp = await visionTraceInputs(model, { prompt: prompt("p_image"), pixelValues: fixture("tiny-vision", c.g, "golden.safetensors"), grid: c.grid, mmproj });
        sameInts("tokens", inp.tokens, g.get("tokens")!.data);
        const ours = new Map(inp.tensors.map((t) => [t.name, t]));
        for (const name of ["image_embeds", ...VISION_TENSORS]) {
          expect(ours.get(name)!.shape, name).toEqual(g.get(name)!.shape);
          expectClose(name, ours.get(name)!.data, g.get(name)!.data, 1e-5);
        }
        const tr = await model.run(inp.tokens, {
          maxNewTokens: 16, stopAtEog: false, logitsLast: inp.tokens.length, embedOverride: inp.embedOverride,
          capture: { names: ["blocks.*.hook_resid_post", "routing"] },
        });
        expectClose("logits", tr.logits, g.get("logits")!.data, 1e-5);
        const text = new Map(fixtureTensors(tr).map((t) => [t.name, t]));
        for (let l = 0; l < model.config.nLayer; l++) {
          expectClose(`layers.${l}.out`, text.get(`layers.${l}.out`)!.data, g.get(`layers.${l}.out`)!.data, 1e-5);
          expectClose(`layers.${l}.router_logits`, text.get(`layers.${l}.router_logits`)!.data, g.get(`layers.${l}.router_logits`)!.data, 1e-5);
        }
        sameInts("greedy", tr.generated, g.get("greedy")!.data);
      });

      it(`${c.g}, PNG: tiles exact, thumbnail within one grey level`, async () => {
        const g = golden("tiny-vision", c.g);
        const inp = await visionTraceInputs(model, { prompt: prompt("p_image"), images: fixture("tiny-vision", c.image), mmproj, capture: "none" });
        sameInts("tokens", inp.tokens, g.get("tokens")!.data);
        const px = inp.tensors.find((t) => t.name === "pixel_values")!;
        const ref = g.get("pixel_values")!;
        expect(px.shape).toEqual(ref.shape);
        const tl = 3 * 336 * 336, tiles = ref.shape[0];
        const thumb = tiles > 1 ? tiles - 1 : -1;
        for (let t = 0; t < tiles; t++) {
          let worst = 0;
          for (let i = t * tl; i < (t + 1) * tl; i++) worst = Math.max(worst, Math.abs(px.data[i] - ref.data[i]));
          if (t === thumb) expect(worst * 127.5, `thumbnail: grey levels off`).toBeLessThanOrEqual(1 + 1e-6);
          else expect(worst, `tile ${t}`).toBe(0);
        }
        if (thumb >= 0) {
          // The float64 variant of the same filter is how the golden's thumbnail was made: bit-exact.
          const f64 = await visionTraceInputs(model, { prompt: prompt("p_image"), images: fixture("tiny-vision", c.image), mmproj, capture: "none", resample: "float64" });
          const p64 = f64.tensors.find((t) => t.name === "pixel_values")!.data;
          let diff = 0;
          for (let i = 0; i < p64.length; i++) if (p64[i] !== ref.data[i]) diff++;
          expect(diff, "float64 resampler vs golden thumbnail").toBe(0);
          const tr = await model.run(f64.tokens, { maxNewTokens: 16, stopAtEog: false, logitsLast: f64.tokens.length, embedOverride: f64.embedOverride });
          expectClose("logits (PNG, float64 resampler)", tr.logits, g.get("logits")!.data, 1e-5);
          sameInts("greedy (PNG, float64 resampler)", tr.generated, g.get("greedy")!.data);
        }
        if (thumb < 0) {
          // No resize anywhere: the run from the PNG is the golden run.
          const tr = await model.run(inp.tokens, { maxNewTokens: 16, stopAtEog: false, logitsLast: inp.tokens.length, embedOverride: inp.embedOverride });
          expectClose("logits", tr.logits, g.get("logits")!.data, 1e-5);
          sameInts("greedy", tr.generated, g.get("greedy")!.data);
        }
      });
    }
  });
}

describe("vision inputs: errors", () => {
  it("a GGUF text model without --mmproj, a wrong grid, mismatched placeholders: clear errors", async () => {
    const model = await Model.load(fixture("tiny-vision", "model.gguf"));
    const pv = fixture("tiny-vision", "golden-img2", "golden.safetensors");
    await expect(visionTraceInputs(model, { prompt: prompt("p_image"), pixelValues: pv, grid: "1x2" })).rejects.toThrow(/--mmproj/);
    const mmproj = fixture("tiny-vision", "mmproj.gguf");
    await expect(visionTraceInputs(model, { prompt: prompt("p_image"), pixelValues: pv, grid: "2x2", mmproj })).rejects.toThrow(/does not hold the 5 tiles/);
    await expect(visionTraceInputs(model, { prompt: prompt("p_image"), pixelValues: pv, grid: "two", mmproj })).rejects.toThrow(/expected RxC/);
    await expect(visionTraceInputs(model, { prompt: "no image here", pixelValues: pv, grid: "1x2", mmproj })).rejects.toThrow(/0 <\|image\|> placeholder/);
    // The text model's file is not an mmproj file.
    await expect(visionTraceInputs(model, { prompt: prompt("p_image"), pixelValues: pv, grid: "1x2", mmproj: fixture("tiny-vision", "model.gguf") })).rejects.toThrow(/not an mmproj file/);
    expect(fs.existsSync(pv)).toBe(true);
  });
});
