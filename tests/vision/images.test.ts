/**
 * Image inputs: the same pixels from a path, a Buffer and a data URI; alpha composited on white;
 * greyscale expanded to RGB; the Pillow-exact resampler against known values; and bad images
 * (corrupt, truncated, zero-size, enormous dimensions, unsupported format, URLs) rejected with a
 * clear MoescopeError, never a crash.
 */
import * as fs from "fs";
import * as zlib from "zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../engine/src/images/decode";
import { preprocessImage } from "../../engine/src/images/preprocess";
import { resizeBilinear, resizeBilinearF64 } from "../../engine/src/images/resample";
import { fixture } from "../helpers";

const PNG = fixture("tiny-vision", "img336x336.png");

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}
/** A PNG whose header claims w×h (with one tiny IDAT): decoding it for real would need w·h·3 bytes. */
function pngHeader(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(Buffer.alloc(16))), chunk("IEND", Buffer.alloc(0))]);
}

describe("image inputs", () => {
  it("path, Buffer and data URI give the same pixel values", async () => {
    const bytes = fs.readFileSync(PNG);
    const a = await preprocessImage(PNG);
    const b = await preprocessImage(bytes);
    const c = await preprocessImage(`data:image/png;base64,${bytes.toString("base64")}`);
    expect(Buffer.from(b.pixelValues.buffer).equals(Buffer.from(a.pixelValues.buffer))).toBe(true);
    expect(Buffer.from(c.pixelValues.buffer).equals(Buffer.from(a.pixelValues.buffer))).toBe(true);
  });

  it("composites alpha on white, expands greyscale to RGB, reads JPEG, 16-bit PNG and WebP", async () => {
    const rgba = await sharp({ create: { width: 4, height: 2, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const im = await decodeImage(rgba);
    expect(Array.from(im.rgb.subarray(0, 3))).toEqual([255, 255, 255]);
    const half = await sharp({ create: { width: 2, height: 2, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    const h = await decodeImage(half);
    expect(Math.abs(h.rgb[0] - 128)).toBeLessThanOrEqual(1);
    const grey = await sharp(Buffer.alloc(6, 77), { raw: { width: 3, height: 2, channels: 1 } }).png().toBuffer();
    const g = await decodeImage(grey);
    expect(Array.from(g.rgb)).toEqual(new Array(18).fill(77));
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 10, g: 200, b: 30 } } }).jpeg({ quality: 100 }).toBuffer();
    const j = await decodeImage(jpeg);
    expect(j.width).toBe(8);
    expect(Math.abs(j.rgb[1] - 200)).toBeLessThanOrEqual(2);
    const png16 = await sharp({ create: { width: 3, height: 2, channels: 3, background: { r: 200, g: 100, b: 50 } } }).toColourspace("rgb16").png().toBuffer();
    expect(Array.from((await decodeImage(png16)).rgb.subarray(0, 3))).toEqual([200, 100, 50]);
    const webp = await sharp({ create: { width: 3, height: 2, channels: 3, background: { r: 9, g: 99, b: 199 } } }).webp({ lossless: true }).toBuffer();
    expect(Array.from((await decodeImage(webp)).rgb.subarray(0, 3))).toEqual([9, 99, 199]);
    const greyAlpha = await sharp(Buffer.from([100, 128, 100, 0]), { raw: { width: 2, height: 1, channels: 2 } }).png().toBuffer();
    expect(Array.from((await decodeImage(greyAlpha)).rgb)).toEqual([177, 177, 177, 255, 255, 255]);
  });

  it("resampler: Pillow's bilinear taps (2:1 averages pairs, identity is a copy, upscale interpolates)", () => {
    const row = Uint8Array.from([0, 10, 20, 30, 40, 50, 60, 71]);
    // Downscale 8 -> 4, triangle of support 2: inner outputs take taps 1/8, 3/8, 3/8, 1/8; edge outputs
    // renormalise their three taps (3/7, 3/7, 1/7). Worked by hand from Pillow's precompute_coeffs.
    const down = resizeBilinear(row, 1, 8, 1, 1, 4);
    expect(Array.from(down)).toEqual([7, 25, 45, 63]);
    expect(Array.from(resizeBilinearF64(row, 1, 8, 1, 1, 4))).toEqual([7, 25, 45, 63]);
    // Exact ties: Pillow rounds half up, the float64 variant half to even.
    // (output 1 = 0/8 + 3/8 * 1 + 3/8 * 0 + 1/8 * 1 = 0.5 exactly)
    const tie = Uint8Array.from([0, 0, 1, 0, 1, 0, 0, 0]);
    expect(resizeBilinear(tie, 1, 8, 1, 1, 4)[1]).toBe(1);
    expect(resizeBilinearF64(tie, 1, 8, 1, 1, 4)[1]).toBe(0);
    expect(Array.from(resizeBilinear(row, 1, 8, 1, 1, 8))).toEqual(Array.from(row));
    const up = resizeBilinear(Uint8Array.from([0, 100]), 1, 2, 1, 1, 4);
    expect(Array.from(up)).toEqual([0, 25, 75, 100]);
  });
});

describe("bad images: clear errors, no crash", () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ["empty buffer", () => Buffer.alloc(0), /not a readable image \(empty\)/],
    ["not an image (text)", () => Buffer.from("hello, this is not an image at all"), /not a readable image/],
    ["corrupt PNG (garbage after the signature)", () => Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), Buffer.alloc(200, 0x5a)]), /not a readable image/],
    ["truncated PNG", () => fs.readFileSync(PNG).subarray(0, 2000), /not a readable image/],
    ["zero-size PNG header", () => pngHeader(0, 10), /not a readable image/],
    ["enormous dimensions (header only)", () => pngHeader(100000, 100000), /over the limit/],
    ["a URL", () => "https://example.com/cat.png", /URLs are not fetched/],
    ["missing file", () => "/nonexistent/picture.png", /no such image file/],
    ["malformed data URI", () => "data:image/png;base64", /malformed/],
    ["a number", () => 42, /expected a file path, a Buffer or a data: URI/],
  ];
  for (const [what, input, re] of cases)
    it(what, async () => {
      const err = await preprocessImage(input() as Buffer).then(() => null, (e) => e);
      expect(err, what).toBeInstanceOf(Error);
      expect(err.message).toMatch(re);
      expect(err.code).toMatch(/^(IMAGE_INVALID|IMAGE_TOO_LARGE|IMAGE_NOT_FOUND|INVALID_PARAMETER)$/);
    });
  it("the pixel limit is configurable and checked before decoding", async () => {
    const err = await preprocessImage(PNG, { maxPixels: 1000 }).then(() => null, (e) => e);
    expect(err?.code).toBe("IMAGE_TOO_LARGE");
    expect(err.message).toMatch(/336×336 = 112896 pixels is over the limit of 1000/);
  });
});
