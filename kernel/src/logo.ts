/**
 * The kernelspec logos (logo-32x32.png, logo-64x64.png), drawn in code so installing needs no
 * image tools: a 4x4 grid of "experts" on a dark tile, two of them lit, as a router would pick them.
 */
import { deflateSync } from "zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** RGBA PNG of the logo at `size`×`size`. */
export function logoPng(size: number): Buffer {
  const bg = [0x1b, 0x1f, 0x2e, 255], off = [0x3a, 0x41, 0x5a, 255], lit = [[0xf5, 0x9e, 0x0b, 255], [0x22, 0xd3, 0xee, 255]];
  const litCells = new Map([[5, lit[0]], [10, lit[1]]]);
  const raw = Buffer.alloc(size * (size * 4 + 1));
  const margin = size / 8, cell = (size - 2 * margin) / 4, gap = Math.max(1, size / 32);
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      let px = bg;
      const cx = Math.floor((x - margin) / cell), cy = Math.floor((y - margin) / cell);
      const inX = (x - margin) % cell, inY = (y - margin) % cell;
      if (cx >= 0 && cx < 4 && cy >= 0 && cy < 4 && inX >= gap / 2 && inX < cell - gap / 2 && inY >= gap / 2 && inY < cell - gap / 2) {
        px = litCells.get(cy * 4 + cx) ?? off;
      }
      raw.set(px, y * (size * 4 + 1) + 1 + x * 4);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}
