/**
 * TinyScout (models/tinyscout, trained by tools/train-demo): moescope's engine against the training
 * code. `expected.safetensors` holds what tools/train-demo/model.py computes, in float64, on the exported
 * weights (every parameter rounded to bfloat16 once; the HF safetensors store them as BF16, the GGUF as
 * BF16 matrices + F32 norms, so both files hold exactly the same numbers).
 *
 * Tolerance: relative Frobenius error of the logits <= 1e-5, chosen experts identical in every layer.
 * The engine computes in float32 with exact weights, so what remains is float32 rounding through 4
 * layers (measured around 1e-7..1e-6); 1e-5 leaves room for summation-order differences but is far
 * below what any semantic slip gives (a wrong RoPE pairing, gate on the output instead of the input,
 * a transposed pixel shuffle or a tanh GELU each move the logits by 1e-3 or more, and bf16 activations
 * by about 1e-2). Image features (the rows spliced at <|patch|>) are held to the same 1e-5.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it, beforeAll } from "vitest";
import { Model } from "../../engine/src/model";
import { readSafetensors, StTensor } from "../../engine/src/safetensors";
import { visionTraceInputs } from "../../engine/src/images/trace-inputs";
import { expectClose, sameInts } from "../helpers";

const DIR = process.env.TINYSCOUT_DIR ?? path.join(__dirname, "..", "..", "models", "tinyscout");
const TOL = 1e-5;

const st = readSafetensors(path.join(DIR, "expected.safetensors"));
const exp: Map<string, StTensor> = st.tensors;
const meta = st.metadata;
const textPrompts: string[] = JSON.parse(meta.text_prompts ?? "[]");
const scenes: { file: string; question: string }[] = JSON.parse(fs.readFileSync(path.join(DIR, "examples", "scenes.json"), "utf8"));

function chatWithImage(q: string): string {
  return `<|begin_of_text|><|header_start|>user<|header_end|>\n\n<|image|>${q}<|eot|><|header_start|>assistant<|header_end|>\n\n`;
}

for (const [format, file] of [["hf", "."], ["gguf", "model.gguf"]] as const) {
  describe(`TinyScout (${format}) against the training code`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await Model.load(path.join(DIR, file));
    });

    it("has the TinyScout shape: 4 layers (3 chunked RoPE + 1 NoPE global), 8 experts top-1, all MoE", () => {
      expect(model.config.nLayer).toBe(4);
      expect(model.layerPlan.map((l) => l.useRope)).toEqual([true, true, true, false]);
      expect(model.layerPlan.every((l) => l.isMoe)).toBe(true);
    });

    textPrompts.forEach((p, i) => {
      it(`text prompt ${i}: tokens, logits (rel <= ${TOL}), experts, greedy`, async () => {
        const tokens = model.tokenize(p);
        sameInts("tokens", tokens, exp.get(`text${i}.tokens`)!.data);
        const trace = await model.run(tokens, { logitsLast: tokens.length, capture: { names: "routing" } });
        const err = expectClose("logits", trace.logits, exp.get(`text${i}.logits`)!.data, TOL);
        console.log(`[tinyscout ${format}] text ${i}: ${tokens.length} tokens, logits rel err ${err.toExponential(2)}`);
        for (let l = 0; l < 4; l++) sameInts(`layer ${l} experts`, trace.routing(l).experts, exp.get(`text${i}.layers.${l}.topk`)!.data);
        const g = exp.get(`text${i}.greedy`)!.data;
        const gen = await model.run(tokens, { maxNewTokens: g.length, stopAtEog: false });
        sameInts("greedy", gen.generated, g);
      });
    });

    scenes.forEach((s, i) => {
      it(`image prompt ${i} (${s.question}): tokens, image features, logits (rel <= ${TOL}), experts`, async () => {
        const vi = await visionTraceInputs(model, {
          prompt: model.tokenize(chatWithImage(s.question), { bos: false }),
          images: [path.join(DIR, s.file)],
          mmproj: format === "gguf" ? path.join(DIR, "mmproj.gguf") : undefined,
          capture: "none",
        });
        sameInts("tokens", vi.tokens, exp.get(`image${i}.tokens`)!.data);
        const errF = expectClose("image features", vi.embedOverride.rows, exp.get(`image${i}.image_embeds`)!.data, TOL);
        const trace = await model.run(vi.tokens, { logitsLast: vi.tokens.length, embedOverride: vi.embedOverride, capture: { names: "routing" } });
        const err = expectClose("logits", trace.logits, exp.get(`image${i}.logits`)!.data, TOL);
        console.log(`[tinyscout ${format}] image ${i}: ${vi.tokens.length} tokens, image features rel err ${errF.toExponential(2)}, logits ${err.toExponential(2)}`);
        for (let l = 0; l < 4; l++) sameInts(`layer ${l} experts`, trace.routing(l).experts, exp.get(`image${i}.layers.${l}.topk`)!.data);
        // Greedy answer through the KV cache, as the training code decodes it (full recompute each step).
        const g = exp.get(`image${i}.greedy`)!.data;
        const gen = await model.run(vi.tokens, { maxNewTokens: g.length, embedOverride: vi.embedOverride, stopAtEog: false });
        sameInts("greedy answer", gen.generated, g);
        console.log(`[tinyscout ${format}] image ${i}: greedy answer ${JSON.stringify(model.decode(gen.generated))}`);
      });
    });
  });
}
