/**
 * The vision tower for every weight type the text path computes with (F16, BF16, Q8_0, Q4_0, Q4_K,
 * Q5_K, Q6_K): an mmproj is rewritten with its matrices in that type (vectors and the 588-wide patch
 * embedding stay F32, as llama.cpp leaves them), next to an F32 "twin" holding exactly the
 * dequantised values. The quantised file must give the twin's image features within 1e-5 (the
 * kernels compute on the stored blocks, no hidden re-quantisation). Block-32 types use the tiny-vision
 * mmproj itself (and must stay near its float64 golden); K-quants need rows of 256, so they use a
 * synthetic tower of the same geometry with widths 256 (random weights, no golden). The HF path is
 * checked the same way with the vision tensors of hf/model.safetensors stored as BF16 and F16.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { GgufValueType, GgufWriter } from "../../engine/src/gguf-writer";
import { VisionModel } from "../../engine/src/images/vision";
import { expectClose, fixture, golden, relErr } from "../helpers";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const native = require(path.resolve(__dirname, "../../build/Release/moescope.node"));

interface Entry { name: string; ne: number[]; values: Float32Array }
interface Kv { key: string; type: number; elemType?: number; value: unknown }

/** All-F32 GGUF -> metadata and tensors (a minimal reader for this one file). */
function readF32Gguf(file: string): { kv: Kv[]; tensors: Entry[] } {
  const buf = fs.readFileSync(file);
  let o = 8;
  const u32 = () => { const v = buf.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(o)); o += 8; return v; };
  const str = () => { const n = u64(); const s = buf.toString("utf8", o, o + n); o += n; return s; };
  const scalar = (t: number): unknown => {
    switch (t) {
      case 4: return u32();
      case 5: { const v = buf.readInt32LE(o); o += 4; return v; }
      case 6: { const v = buf.readFloatLE(o); o += 4; return v; }
      case 7: return buf.readUInt8(o++) !== 0;
      case 8: return str();
      case 10: return buf.readBigUInt64LE((o += 8) - 8);
      default: throw new Error(`value type ${t} not expected in mmproj.gguf`);
    }
  };
  const nT = u64(), nKv = u64();
  const kv: Kv[] = [];
  for (let i = 0; i < nKv; i++) {
    const key = str(), type = u32();
    if (type === 9) { const et = u32(); const n = u64(); const a: unknown[] = []; for (let j = 0; j < n; j++) a.push(scalar(et)); kv.push({ key, type, elemType: et, value: a }); }
    else kv.push({ key, type, value: scalar(type) });
  }
  const infos: Array<{ name: string; ne: number[]; type: number; off: number }> = [];
  for (let i = 0; i < nT; i++) {
    const name = str(), nd = u32(), ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(u64());
    infos.push({ name, ne, type: u32(), off: u64() });
  }
  const align = (kv.find((k) => k.key === "general.alignment")?.value as number) ?? 32;
  const data = Math.ceil(o / align) * align;
  return {
    kv,
    tensors: infos.map((t) => {
      expect(t.type).toBe(0);
      const n = t.ne.reduce((a, b) => a * b, 1);
      return { name: t.name, ne: t.ne, values: new Float32Array(buf.buffer.slice(buf.byteOffset + data + t.off, buf.byteOffset + data + t.off + n * 4)) };
    }),
  };
}

async function writeGguf(file: string, kv: Kv[], tensors: Array<{ name: string; ne: number[]; type: number; bytes: Buffer }>) {
  const w = new GgufWriter();
  for (const k of kv) {
    if (k.key === "general.alignment") continue;
    if (k.type === 9) w.array(k.key, k.elemType as GgufValueType, k.value as number[]);
    else w.set(k.key, { type: k.type, value: k.value } as never);
  }
  for (const t of tensors) w.addTensor(t.name, t.ne, t.type);
  await w.writeFile(file, (_t, i) => [tensors[i].bytes]);
}

const TYPES: Array<[string, number, number, number]> = [
  // name, ggml id, block size, loose bound vs the F32 original (tiny-vision golden)
  ["F16", 1, 1, 1e-3], ["BF16", 30, 1, 2e-2], ["Q8_0", 8, 32, 2e-2], ["Q4_0", 2, 32, 0.3], ["Q4_K", 12, 256, 0], ["Q5_K", 13, 256, 0], ["Q6_K", 14, 256, 0],
];

/** A random tower with the real geometry (336 px, 14 px patches, CLS, pixel shuffle 2) and widths of 256. */
function syntheticWide(kv: Kv[]): { kv: Kv[]; tensors: Entry[] } {
  const C = 256, F = 512, A = 256, P = 64, L = 1;
  let seed = 7;
  const rnd = (n: number, scale: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2 * scale);
  const ones = (n: number) => new Float32Array(n).fill(1);
  const t: Entry[] = [];
  const add = (name: string, ne: number[], values: Float32Array) => t.push({ name, ne, values });
  add("v.patch_embd.weight", [588, C], rnd(588 * C, 0.05));
  add("v.class_embd", [C], rnd(C, 0.5));
  add("v.position_embd.weight", [C, 577], rnd(C * 577, 0.5));
  for (const n of ["v.pre_ln", "v.post_ln"]) { add(`${n}.weight`, [C], ones(C)); add(`${n}.bias`, [C], rnd(C, 0.1)); }
  for (let l = 0; l < L; l++) {
    for (const m of ["attn_q", "attn_k", "attn_v", "attn_out"]) { add(`v.blk.${l}.${m}.weight`, [C, C], rnd(C * C, 0.06)); add(`v.blk.${l}.${m}.bias`, [C], rnd(C, 0.1)); }
    add(`v.blk.${l}.ffn_up.weight`, [C, F], rnd(C * F, 0.06)); add(`v.blk.${l}.ffn_up.bias`, [F], rnd(F, 0.1));
    add(`v.blk.${l}.ffn_down.weight`, [F, C], rnd(F * C, 0.04)); add(`v.blk.${l}.ffn_down.bias`, [C], rnd(C, 0.1));
    for (const n of ["ln1", "ln2"]) { add(`v.blk.${l}.${n}.weight`, [C], ones(C)); add(`v.blk.${l}.${n}.bias`, [C], rnd(C, 0.1)); }
  }
  add("mm.model.mlp.1.weight", [4 * C, A], rnd(4 * C * A, 0.03));
  add("mm.model.mlp.2.weight", [A, A], rnd(A * A, 0.06));
  add("mm.model.fc.weight", [A, P], rnd(A * P, 0.06));
  const sizes: Record<string, number> = {
    "clip.vision.embedding_length": C, "clip.vision.feed_forward_length": F, "clip.vision.block_count": L, "clip.vision.projection_dim": P,
  };
  return { kv: kv.map((k) => (k.key in sizes ? { ...k, value: sizes[k.key] } : k)), tensors: t };
}

describe("vision weights in every type (mmproj GGUF)", () => {
  const src = readF32Gguf(fixture("tiny-vision", "mmproj.gguf"));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-vision-types-"));
  const g = golden("tiny-vision", "golden-img1");
  const pixels = Float32Array.from(g.get("pixel_values")!.data);

  const wide = syntheticWide(src.kv);
  for (const [name, id, bs, loose] of TYPES)
    it(`${name}: equals its dequantised F32 twin${loose ? ", near the original" : " (synthetic 256-wide tower)"}`, async () => {
      const model = bs === 256 ? wide : src;
      const q: Array<{ name: string; ne: number[]; type: number; bytes: Buffer }> = [];
      const twin: typeof q = [];
      for (const t of model.tensors) {
        const quantise = t.ne.length === 2 && t.ne[0] % bs === 0;
        if (!quantise) {
          const b = Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength);
          q.push({ name: t.name, ne: t.ne, type: 0, bytes: b });
          twin.push({ name: t.name, ne: t.ne, type: 0, bytes: b });
          continue;
        }
        const bytes: Buffer = native._quantize(id, t.values);
        const deq: Float32Array = native._dequantize(id, bytes, t.values.length);
        q.push({ name: t.name, ne: t.ne, type: id, bytes });
        twin.push({ name: t.name, ne: t.ne, type: 0, bytes: Buffer.from(deq.buffer, deq.byteOffset, deq.byteLength) });
      }
      const fq = path.join(dir, `mmproj-${name}.gguf`), ft = path.join(dir, `mmproj-${name}-twin.gguf`);
      expect(q.filter((t) => t.type === id).length, "matrices stored in the type").toBeGreaterThan(4);
      await writeGguf(fq, model.kv, q);
      await writeGguf(ft, model.kv, twin);
      const a = await (await VisionModel.load(fq)).encode(pixels, 1);
      const b = await (await VisionModel.load(ft)).encode(pixels, 1);
      expectClose(`${name} vs its F32 twin`, a.embeds, b.embeds, 1e-5);
      if (loose) expect(relErr(a.embeds, g.get("image_embeds")!.data), `${name} vs the F32 original`).toBeLessThan(loose);
      else expect(a.embeds.every(Number.isFinite) && a.embeds.some((v) => Math.abs(v) > 1e-3), "finite, non-trivial features").toBe(true);
    });
});

describe("vision weights in BF16 / F16 safetensors (HF folder)", () => {
  /** Rewrites hf/model.safetensors with every vision_model / projector tensor in `dtype` (others unchanged), and an F32 twin of the rounded values. */
  function writeHf(dir: string, dtype: "BF16" | "F16", twin: boolean): string {
    const src = fs.readFileSync(fixture("tiny-vision", "hf", "model.safetensors"));
    const hlen = Number(src.readBigUInt64LE(0));
    const header = JSON.parse(src.subarray(8, 8 + hlen).toString("utf8"));
    const data = src.subarray(8 + hlen);
    const out: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    let off = 0;
    for (const [name, t] of Object.entries<any>(header)) {
      if (name === "__metadata__") { out[name] = t; continue; }
      let bytes = data.subarray(t.data_offsets[0], t.data_offsets[1]);
      let dt = t.dtype;
      if (name.startsWith("vision_model.") || name.startsWith("multi_modal_projector.")) {
        const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
        const id = dtype === "BF16" ? 30 : 1;
        const q: Buffer = native._quantize(id, f);
        if (twin) { const d: Float32Array = native._dequantize(id, q, f.length); bytes = Buffer.from(d.buffer, d.byteOffset, d.byteLength); }
        else { bytes = q; dt = dtype; }
      }
      out[name] = { dtype: dt, shape: t.shape, data_offsets: [off, off + bytes.length] };
      chunks.push(Buffer.from(bytes));
      off += bytes.length;
    }
    const d = path.join(dir, `${dtype}${twin ? "-twin" : ""}`);
    fs.mkdirSync(d, { recursive: true });
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) fs.copyFileSync(fixture("tiny-vision", "hf", f), path.join(d, f));
    const hb = Buffer.from(JSON.stringify(out));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length));
    fs.writeFileSync(path.join(d, "model.safetensors"), Buffer.concat([len, hb, ...chunks]));
    return d;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-vision-hf-types-"));
  const g = golden("tiny-vision", "golden-img1");
  const pixels = Float32Array.from(g.get("pixel_values")!.data);
  for (const [dtype, loose] of [["BF16", 2e-2], ["F16", 1e-3]] as const)
    it(`${dtype}: equals its F32 twin, near the float64 golden`, async () => {
      const a = await (await VisionModel.load(writeHf(dir, dtype, false))).encode(pixels, 1);
      const b = await (await VisionModel.load(writeHf(dir, dtype, true))).encode(pixels, 1);
      expectClose(`${dtype} vs its F32 twin`, a.embeds, b.embeds, 1e-5);
      expect(relErr(a.embeds, g.get("image_embeds")!.data)).toBeLessThan(loose);
    });
});
