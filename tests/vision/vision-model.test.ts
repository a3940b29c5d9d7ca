/**
 * The native vision tower's own contract: hook points and their shapes (attention probabilities are
 * row-stochastic), cancellation through an AbortSignal, and loading errors (missing, extra or
 * misshapen tensors, a non-clip GGUF, a checkpoint without vision_config), all as MoescopeErrors.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { VisionModel } from "../../engine/src/images/vision";
import { fixture, golden } from "../helpers";

describe("vision hooks", () => {
  it("names, shapes, attention rows summing to one", async () => {
    const v = await VisionModel.load(fixture("tiny-vision", "hf"));
    expect(v.hookNames()).toEqual([
      "vision.embed", "vision.layers.0.out", "vision.layers.0.attn_probs", "vision.layers.1.out", "vision.layers.1.attn_probs",
      "vision.post_ln", "vision.pixel_shuffle", "vision.adapter",
    ]);
    expect(v.resolveNames("vision.layers.*.out")).toEqual(["vision.layers.0.out", "vision.layers.1.out"]);
    expect(() => v.resolveNames("vision.nope")).toThrow(/matches no vision hook point/);
    const probs = v.resolveNames("vision.layers.*.attn_probs");
    expect(v.captureBytes(probs, 3)).toBe(2 * 3 * 2 * 577 * 577 * 4);
    await expect(v.encode(new Float32Array(3 * 336 * 336), 1, { capture: probs, captureBudgetBytes: 1e6 })).rejects.toMatchObject({ code: "CAPTURE_OVER_BUDGET" });
    const px = Float32Array.from(golden("tiny-vision", "golden-img2").get("pixel_values")!.data);
    const out = await v.encode(px, 3, { capture: ["vision.embed", "vision.layers.1.attn_probs"] });
    expect(out.embeds.length).toBe(3 * 144 * 64);
    expect(out.tensors.get("vision.embed")!.shape).toEqual([3, 577, 32]);
    const a = out.tensors.get("vision.layers.1.attn_probs")!;
    expect(a.shape).toEqual([3, 2, 577, 577]);
    for (const row of [0, 576, 577 * 2 + 5, 3 * 2 * 577 - 1]) {
      let s = 0;
      for (let k = 0; k < 577; k++) s += a.data[row * 577 + k];
      expect(s).toBeCloseTo(1, 5);
    }
  });

  it("an aborted signal cancels; wrong pixel counts are refused", async () => {
    const v = await VisionModel.load(fixture("tiny-vision", "mmproj.gguf"));
    const ac = new AbortController();
    ac.abort();
    await expect(v.encode(new Float32Array(3 * 336 * 336), 1, { signal: ac.signal })).rejects.toMatchObject({ code: "CANCELLED" });
    await expect(v.encode(new Float32Array(10), 1)).rejects.toMatchObject({ code: "BAD_PIXELS" });
    // Aborting while running: many tiles, abort right away; either finishes first or is cancelled, never crashes.
    const ac2 = new AbortController();
    const p = v.encode(new Float32Array(8 * 3 * 336 * 336), 8, { signal: ac2.signal });
    ac2.abort();
    const r = await p.then(() => "done", (e) => e.code);
    expect(["done", "CANCELLED"]).toContain(r);
  });
});

describe("vision loading errors", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-vision-bad-"));
  it("a text-only GGUF, a missing path, a folder without vision_config", async () => {
    await expect(VisionModel.load(fixture("tiny-vision", "model.gguf"))).rejects.toMatchObject({ code: "MODEL_NO_VISION" });
    await expect(VisionModel.load(path.join(dir, "nope.gguf"))).rejects.toMatchObject({ code: "MODEL_NOT_FOUND" });
    await expect(VisionModel.load(fixture("tiny-scout", "hf"))).rejects.toMatchObject({ code: "MODEL_NO_VISION" });
  });
  it("a truncated mmproj file", async () => {
    const f = path.join(dir, "truncated.gguf");
    fs.writeFileSync(f, fs.readFileSync(fixture("tiny-vision", "mmproj.gguf")).subarray(0, 3000));
    const e = await VisionModel.load(f).then(() => null, (x) => x);
    expect(e?.code).toMatch(/^GGUF_/);
  });
  it("an HF folder whose vision tensors are incomplete or misshapen", async () => {
    const src = fs.readFileSync(fixture("tiny-vision", "hf", "model.safetensors"));
    const hlen = Number(src.readBigUInt64LE(0));
    const header = JSON.parse(src.subarray(8, 8 + hlen).toString("utf8"));
    const write = (name: string, h: Record<string, unknown>, tail = Buffer.alloc(0)) => {
      const d = path.join(dir, name);
      fs.mkdirSync(d, { recursive: true });
      for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) fs.copyFileSync(fixture("tiny-vision", "hf", f), path.join(d, f));
      const hb = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(hb.length));
      fs.writeFileSync(path.join(d, "model.safetensors"), Buffer.concat([len, hb, src.subarray(8 + hlen), tail]));
      return d;
    };
    const missing = { ...header };
    delete missing["vision_model.layernorm_post.bias"];
    await expect(VisionModel.load(write("missing", missing))).rejects.toThrow(/vision tensor vision_model.layernorm_post.bias is missing/);
    const dataLen = src.length - 8 - hlen;
    const extra = { ...header, "vision_model.extra.weight": { dtype: "F32", shape: [32], data_offsets: [dataLen, dataLen + 128] } };
    await expect(VisionModel.load(write("extra", extra, Buffer.alloc(128)))).rejects.toMatchObject({ code: "MODEL_UNUSED_TENSOR" });
    const misshapen = { ...header, "vision_model.class_embedding": { ...header["vision_model.class_embedding"], shape: [16], data_offsets: [header["vision_model.class_embedding"].data_offsets[0], header["vision_model.class_embedding"].data_offsets[0] + 64] } };
    await expect(VisionModel.load(write("misshapen", misshapen))).rejects.toMatchObject({ code: "MODEL_SHAPE_MISMATCH" });
  });
});
