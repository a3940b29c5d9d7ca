/**
 * The tile plan (spec §3.1): the worked-examples table reproduced exactly through the
 * `moescope image-plan` command, and properties over many sizes (never upscales, padding only at the
 * bottom/right, thumbnail only with more than one tile, prompt length formula of §3.6).
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { candidateGrids, planImage } from "../../engine/src/images/plan";
import { tilesFromPixels } from "../../engine/src/images/preprocess";

const BIN = path.join(__dirname, "..", "..", "bin", "moescope.js");

// H×W | canvas | grid | resized | tiles | prompt tokens (spec §3.1 worked examples)
const TABLE: Array<[number, number, number, number, number, number, number, number, number, number]> = [
  [200, 300, 336, 336, 1, 1, 224, 336, 1, 147],
  [336, 336, 336, 336, 1, 1, 336, 336, 1, 147],
  [480, 640, 672, 672, 2, 2, 480, 640, 5, 727],
  [768, 1024, 1008, 1344, 3, 4, 768, 1024, 13, 1887],
  [1080, 1920, 1008, 1680, 3, 5, 945, 1680, 16, 2322],
  [3000, 4000, 1008, 1344, 3, 4, 1008, 1344, 13, 1887],
  [100, 2000, 336, 2016, 1, 6, 100, 2000, 7, 1017],
];

describe("image-plan: spec §3.1 worked examples", () => {
  it("has the reference's 50 candidate canvases for 16 tiles", () => {
    expect(candidateGrids(16).length).toBe(50);
  });
  for (const [H, W, ch, cw, r, c, rh, rw, tiles, prompt] of TABLE) {
    it(`${H}×${W}`, () => {
      const out = JSON.parse(execFileSync(process.execPath, [BIN, "image-plan", "--width", String(W), "--height", String(H)], { encoding: "utf8" }));
      expect(out).toMatchObject({ rows: r, cols: c, resized_height: rh, resized_width: rw, tiles, thumbnail: tiles > 1, prompt_tokens: prompt });
      expect([out.canvas_height, out.canvas_width]).toEqual([ch, cw]);
    });
  }
  it("rejects a bad size with a clear error and exit code 1", () => {
    let err: { status?: number; stderr?: string } = {};
    try {
      execFileSync(process.execPath, [BIN, "image-plan", "--width", "0", "--height", "10"], { encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(1);
    expect(err.stderr).toMatch(/width must be an integer >= 1/);
  });
});

describe("image plan properties", () => {
  // A deterministic spread of sizes: tiny, thin, huge, near tile multiples.
  const sizes: Array<[number, number]> = [];
  let s = 12345;
  const rnd = (n: number) => ((s = (s * 1103515245 + 12345) % 2 ** 31), 1 + (s % n));
  for (let i = 0; i < 400; i++) sizes.push([rnd(i % 3 === 0 ? 400 : 6000), rnd(i % 5 === 0 ? 400 : 6000)]);
  sizes.push([1, 1], [1, 5000], [5000, 1], [336, 337], [337, 336], [672, 672], [673, 1009]);

  it("never upscales beyond the image (unless a side is below one tile), fits the canvas, keeps the aspect", () => {
    for (const [H, W] of sizes) {
      for (const maxTiles of [16, 4, 1]) {
        const p = planImage(H, W, { maxTiles });
        const what = `${H}×${W} max ${maxTiles}`;
        expect(p.rows * p.cols, what).toBeLessThanOrEqual(maxTiles);
        expect(p.resizedHeight, what).toBeLessThanOrEqual(Math.max(H, 336));
        expect(p.resizedWidth, what).toBeLessThanOrEqual(Math.max(W, 336));
        expect(p.resizedHeight, what).toBeLessThanOrEqual(p.canvasHeight);
        expect(p.resizedWidth, what).toBeLessThanOrEqual(p.canvasWidth);
        // One side is the binding constraint; the other follows the aspect ratio (floored).
        const ar = W / H, got = p.resizedWidth / p.resizedHeight;
        if (p.resizedHeight > 8 && p.resizedWidth > 8) expect(Math.abs(got - ar) / ar, what).toBeLessThan(0.15);
        expect(p.thumbnail, what).toBe(p.rows * p.cols > 1);
        expect(p.tiles, what).toBe(p.rows * p.cols + (p.thumbnail ? 1 : 0));
        const n = p.rows * p.cols;
        expect(p.promptTokens, what).toBe(n === 1 ? 147 : 3 + 144 + p.rows * (144 * p.cols + p.cols));
      }
    }
  });

  it("pads only at the bottom and right: padded pixels are -1, the image sits in the top-left corner", () => {
    for (const [H, W] of [[200, 300], [100, 700], [500, 340], [30, 30]] as Array<[number, number]>) {
      const rgb = new Uint8Array(H * W * 3).fill(200); // 200 -> (200/255-0.5)/0.5 = 0.568...
      const { plan, pixelValues } = tilesFromPixels({ width: W, height: H, rgb });
      const S = 336, tl = 3 * S * S, inside = Math.fround((200 / 255 - 0.5) / 0.5);
      const bad: string[] = [];
      for (let r = 0; r < plan.rows; r++)
        for (let c = 0; c < plan.cols; c++) {
          const t = r * plan.cols + c;
          for (let ch = 0; ch < 3; ch++)
            for (let y = 0; y < S; y++)
              for (let x = 0; x < S; x++) {
                const inImage = r * S + y < plan.resizedHeight && c * S + x < plan.resizedWidth;
                const v = pixelValues[t * tl + (ch * S + y) * S + x];
                if (v !== (inImage ? inside : -1) && bad.length < 5) bad.push(`tile ${t} ch ${ch} (${y},${x}) = ${v}`);
              }
        }
      // The last image row/column and the first padded ones, exactly.
      const at = (cy: number, cx: number) => pixelValues[(Math.floor(cy / S) * plan.cols + Math.floor(cx / S)) * tl + (cy % S) * S + (cx % S)];
      expect(at(plan.resizedHeight - 1, plan.resizedWidth - 1)).toBe(inside);
      if (plan.resizedHeight < plan.canvasHeight) expect(at(plan.resizedHeight, 0)).toBe(-1);
      if (plan.resizedWidth < plan.canvasWidth) expect(at(0, plan.resizedWidth)).toBe(-1);
      expect(bad, `${H}×${W}`).toEqual([]);
      if (plan.thumbnail) expect(pixelValues.subarray((plan.tiles - 1) * tl).includes(-1), "thumbnail is stretched, never padded").toBe(false);
    }
  });
});
