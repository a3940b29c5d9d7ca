/**
 * `moescope trace` with images: --pixel-values/--grid (+ --mmproj for a GGUF text model) and --image.
 * The trace file holds the golden's vision tensors with the golden's shapes and values (1e-5), the
 * multimodal logits and the greedy tokens.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { readSafetensors } from "../../engine/src/safetensors";
import { expectClose, fixture, golden, sameInts } from "../helpers";

const BIN = path.join(__dirname, "..", "..", "bin", "moescope.js");
const NAMES = ["pixel_values", "image_embeds", "vision.layers.0.out", "vision.layers.1.out", "vision.post_ln", "vision.pixel_shuffle", "vision.adapter", "logits", "layers.3.out"];

function trace(args: string[]): Map<string, { shape: number[]; data: ArrayLike<number> }> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "moescope-vision-")), "trace.safetensors");
  execFileSync(process.execPath, [BIN, "trace", "--prompt-file", fixture("prompts", "p_image.txt"), "--out", out, ...args], { stdio: "pipe" });
  return readSafetensors(out).tensors;
}

describe("moescope trace with images", () => {
  it("--pixel-values --grid 1x2 --mmproj (GGUF text model): golden-img2", () => {
    const F = fixture("tiny-vision");
    const t = trace(["--model", path.join(F, "model.gguf"), "--mmproj", path.join(F, "mmproj.gguf"), "--pixel-values", path.join(F, "golden-img2", "golden.safetensors"), "--grid", "1x2"]);
    const g = golden("tiny-vision", "golden-img2");
    sameInts("tokens", t.get("tokens")!.data, g.get("tokens")!.data);
    for (const n of NAMES) {
      expect(t.get(n)!.shape, n).toEqual(g.get(n)!.shape);
      expectClose(n, t.get(n)!.data, g.get(n)!.data, 1e-5);
    }
    sameInts("greedy", t.get("greedy")!.data, g.get("greedy")!.data);
  });

  it("--image (HF folder): golden-img1", () => {
    const F = fixture("tiny-vision");
    const t = trace(["--model", path.join(F, "hf"), "--image", path.join(F, "img336x336.png")]);
    const g = golden("tiny-vision", "golden-img1");
    sameInts("tokens", t.get("tokens")!.data, g.get("tokens")!.data);
    for (const n of NAMES) expectClose(n, t.get(n)!.data, g.get(n)!.data, 1e-5);
    sameInts("greedy", t.get("greedy")!.data, g.get("greedy")!.data);
  });

  it("a bad image fails with a clear message and exit code 1", () => {
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "moescope-vision-")), "bad.png");
    fs.writeFileSync(bad, "not a png");
    let err: { status?: number; stderr?: Buffer } = {};
    try {
      trace(["--model", fixture("tiny-vision", "hf"), "--image", bad]);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(1);
    expect(String(err.stderr)).toMatch(/not a readable image/);
  });
});
