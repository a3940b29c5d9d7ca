/**
 * Prompt layout (spec §3.6): the image block for one tile and for grids, its length equal to the
 * plan's prompt token count, placeholder expansion (patch positions in feature order), the chat helper
 * (images in user turns only), and the HF bf16 normalisation variant.
 */
import { describe, expect, it } from "vitest";
import { planImage } from "../../engine/src/images/plan";
import { normalise, normaliseHfBf16 } from "../../engine/src/images/preprocess";
import { expandImagePlaceholders, imageBlock, imageChat, ImageTokenIds } from "../../engine/src/images/prompt";

const IDS: ImageTokenIds = { imageStart: 200080, imageEnd: 200081, tileX: 200084, tileY: 200085, image: 200090, patch: 200092 };
const P = "P";
const name = (id: number) => ({ 200080: "<start>", 200081: "<end>", 200084: "<x>", 200085: "<y>", 200090: "<image>", 200092: P } as Record<number, string>)[id];
/** Block as text with runs of patches collapsed: "<start> P×144 <x> ...". */
function layout(ids: number[]): string {
  const out: string[] = [];
  for (const id of ids) {
    const n = name(id);
    const last = out[out.length - 1];
    if (n === P && last?.startsWith(P)) out[out.length - 1] = `${P}×${Number(last.split("×")[1] ?? 1) + 1}`;
    else out.push(n === P ? `${P}×1` : n);
  }
  return out.join(" ");
}

describe("image block layout", () => {
  it("one tile: <|image_start|> <|image|> <|patch|>×144 <|image_end|>", () => {
    const b = imageBlock(planImage(336, 336), IDS);
    expect(layout(b.map((t) => t.id))).toBe("<start> <image> P×144 <end>");
    expect(b.length).toBe(147);
  });
  it("2×3 grid: x-separators between columns, a y-separator after every row, <|image|> then the thumbnail", () => {
    const plan = planImage(672, 1008);
    expect([plan.rows, plan.cols]).toEqual([2, 3]);
    const b = imageBlock(plan, IDS);
    const row = "P×144 <x> P×144 <x> P×144 <y>";
    expect(layout(b.map((t) => t.id))).toBe(`<start> ${row} ${row} <image> P×144 <end>`);
    expect(b.length).toBe(plan.promptTokens);
    // Feature order: tiles row-major, thumbnail last.
    const tiles = b.filter((t) => t.tile >= 0).map((t) => t.tile);
    expect(tiles.filter((t, i) => i % 144 === 0)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
  it("expands each <|image|> placeholder in order and reports the patch positions", () => {
    const plans = [planImage(336, 336), planImage(336, 672)];
    const e = expandImagePlaceholders([1, 2, IDS.image, 3, IDS.image, 4], plans, IDS);
    expect(e.tokens.length).toBe(6 - 2 + 147 + plans[1].promptTokens);
    expect(e.patchPositions.length).toBe(144 + 3 * 144);
    for (const p of e.patchPositions) expect(e.tokens[p]).toBe(IDS.patch);
    expect(e.images[0]).toMatchObject({ start: 2, end: 149 });
    expect(e.images[1].start).toBe(150);
    expect(() => expandImagePlaceholders([1, IDS.image], [], IDS)).toThrow(/1 <\|image\|> placeholder\(s\) for 0 image/);
    expect(() => expandImagePlaceholders([IDS.image, IDS.patch], plans.slice(0, 1), IDS)).toThrow(/already holds <\|patch\|>/);
  });
  it("chat helper: images in user turns, in order", () => {
    const a = Buffer.from("a"), b = Buffer.from("b");
    const r = imageChat([{ role: "user", content: [{ type: "image", image: a }, { type: "text", text: "Compare" }, { type: "image", image: b }] }]);
    expect(r.images).toEqual([a, b]);
    // No <|begin_of_text|>: the tokenizer adds it (a literal one would make two).
    expect(r.text).toBe("<|header_start|>user<|header_end|>\n\n<|image|>Compare<|image|><|eot|><|header_start|>assistant<|header_end|>\n\n");
    expect(imageChat([{ role: "user", content: "hi" }], { bos: true }).text.startsWith("<|begin_of_text|>")).toBe(true);
    expect(() => imageChat([{ role: "assistant", content: [{ type: "image", image: a }] }])).toThrow(/user turns/);
  });
});

describe("normalisation", () => {
  it("float32 (META, goldens) and HF's bfloat16 steps", () => {
    expect(normalise(0)).toBe(-1);
    expect(normalise(255)).toBe(1);
    expect(normalise(200)).toBe(Math.fround(200 / 127.5 - 1));
    // bf16(200/255 = 0.784...) = 0.78515625; - 0.5 = 0.28515625 -> bf16 0.28515625; / 0.5 = 0.5703125
    expect(normaliseHfBf16(200)).toBe(0.5703125);
    expect(normaliseHfBf16(0)).toBe(-1);
    expect(normaliseHfBf16(255)).toBe(1);
  });
});
