// `moescope synth` (engine/src/synth.ts) and the GGUF writer: writes tiny presets to a temp dir and
// parses them back with an independent minimal GGUF v3 reader written here: magic, version,
// metadata, tensor names / shapes / types, aligned offsets, file size, and the weights themselves
// (dequantised by the addon: init-like statistics, the fixture's llama3 rope factors).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { GgufValueType, GgufWriter } from "../../engine/src/gguf-writer";
import { NORMAL_QUANTILES, PRESETS, Rng, synthesize } from "../../engine/src/synth";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const native = require(path.resolve(__dirname, "../../build/Release/moescope.node"));

interface Tensor { name: string; ne: number[]; type: number; offset: number }
interface Parsed { version: number; kv: Map<string, { type: number; value: unknown }>; tensors: Tensor[]; dataStart: number; size: number; buf: Buffer }

function parseGguf(file: string): Parsed {
  const buf = fs.readFileSync(file);
  let o = 0;
  const u32 = () => { const v = buf.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(o)); o += 8; return v; };
  const str = () => { const n = u64(); const s = buf.toString("utf8", o, o + n); o += n; return s; };
  const scalar = (t: number): unknown => {
    switch (t) {
      case 0: return buf.readUInt8(o++);
      case 1: return buf.readInt8(o++);
      case 2: { const v = buf.readUInt16LE(o); o += 2; return v; }
      case 3: { const v = buf.readInt16LE(o); o += 2; return v; }
      case 4: return u32();
      case 5: { const v = buf.readInt32LE(o); o += 4; return v; }
      case 6: { const v = buf.readFloatLE(o); o += 4; return v; }
      case 7: return buf.readUInt8(o++) !== 0;
      case 8: return str();
      case 10: return buf.readBigUInt64LE((o += 8) - 8);
      case 11: return buf.readBigInt64LE((o += 8) - 8);
      case 12: { const v = buf.readDoubleLE(o); o += 8; return v; }
      case 9: { const et = u32(); const n = u64(); const a: unknown[] = []; for (let i = 0; i < n; i++) a.push(scalar(et)); return a; }
      default: throw new Error(`bad GGUF value type ${t}`);
    }
  };
  expect(buf.toString("latin1", 0, 4)).toBe("GGUF");
  o = 4;
  const version = u32();
  const nTensors = u64(), nKv = u64();
  const kv = new Map<string, { type: number; value: unknown }>();
  for (let i = 0; i < nKv; i++) { const k = str(); const t = u32(); kv.set(k, { type: t, value: scalar(t) }); }
  const tensors: Tensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str(); const nd = u32(); const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(u64());
    tensors.push({ name, ne, type: u32(), offset: u64() });
  }
  const alignment = (kv.get("general.alignment")?.value as number) ?? 32;
  const dataStart = Math.ceil(o / alignment) * alignment;
  return { version, kv, tensors, dataStart, size: buf.length, buf };
}

const SIZES: Record<number, [number, number]> = { 0: [1, 4], 1: [1, 2], 30: [1, 2], 8: [32, 34], 2: [32, 18], 12: [256, 144], 13: [256, 176], 14: [256, 210] };
const bytesOf = (t: Tensor) => (t.ne.reduce((a, b) => a * b, 1) / SIZES[t.type][0]) * SIZES[t.type][1];

function tensorValues(p: Parsed, name: string): Float32Array {
  const t = p.tensors.find((x) => x.name === name)!;
  const n = t.ne.reduce((a, b) => a * b, 1);
  const raw = p.buf.subarray(p.dataStart + t.offset, p.dataStart + t.offset + bytesOf(t));
  return native._dequantize(t.type, Buffer.from(raw), n);
}

function stats(v: Float32Array) {
  let s = 0, ss = 0;
  for (const x of v) { s += x; ss += x * x; }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(ss / v.length - mean * mean) };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-synth-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = () => {};

// Structure every synth file must have, whatever the preset and type.
function checkStructure(p: Parsed, presetName: string, layersWanted?: number) {
  const pre = PRESETS[presetName];
  const L = layersWanted ?? pre.layers;
  expect(p.version).toBe(3);
  expect(p.kv.get("general.architecture")?.value).toBe("llama4");
  expect(p.kv.get("general.alignment")).toEqual({ type: GgufValueType.UINT32, value: 32 });
  const u = (k: string) => p.kv.get("llama4." + k)?.value;
  expect(u("block_count")).toBe(L);
  expect(u("embedding_length")).toBe(pre.hidden);
  expect(u("feed_forward_length")).toBe(pre.denseFF);
  expect(u("expert_feed_forward_length")).toBe(pre.expertFF);
  expect(u("attention.head_count")).toBe(pre.heads);
  expect(u("attention.head_count_kv")).toBe(pre.kvHeads);
  expect(u("attention.key_length")).toBe(pre.headDim);
  expect(u("attention.value_length")).toBe(pre.headDim);
  expect(u("rope.dimension_count")).toBe(pre.headDim);
  expect(u("rope.freq_base")).toBe(pre.ropeTheta);
  expect(u("attention.layer_norm_rms_epsilon")).toBe(Math.fround(1e-5));
  expect(u("expert_count")).toBe(pre.experts);
  expect(u("expert_used_count")).toBe(1);
  expect(u("interleave_moe_layer_step")).toBe(pre.interleaveMoe);
  expect(u("vocab_size")).toBe(pre.vocab);
  expect(u("context_length")).toBe(pre.contextLength);

  // Tokenizer: 256 byte tokens, the specials (control), [PAD<id>] fillers; ids read from the file.
  expect(p.kv.get("tokenizer.ggml.model")?.value).toBe("gpt2");
  expect(p.kv.get("tokenizer.ggml.pre")?.value).toBe("llama4");
  const tokens = p.kv.get("tokenizer.ggml.tokens")!.value as string[];
  const types = p.kv.get("tokenizer.ggml.token_type")!.value as number[];
  expect(tokens.length).toBe(pre.vocab);
  expect(types.length).toBe(pre.vocab);
  expect(tokens[0]).toBe("Ā");
  expect(tokens[32]).toBe("Ġ");
  expect(tokens[65]).toBe("A");
  expect(new Set(tokens).size).toBe(tokens.length);
  const bos = p.kv.get("tokenizer.ggml.bos_token_id")!.value as number;
  const eos = p.kv.get("tokenizer.ggml.eos_token_id")!.value as number;
  const pad = p.kv.get("tokenizer.ggml.padding_token_id")!.value as number;
  expect([tokens[bos], tokens[eos], tokens[pad]]).toEqual(["<|begin_of_text|>", "<|eot|>", "<|finetune_right_pad|>"]);
  for (const s of ["<|header_start|>", "<|header_end|>", "<|eom|>", "<|image_start|>", "<|image_end|>", "<|image|>", "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>"]) {
    expect(types[tokens.indexOf(s)], s).toBe(3);
  }
  expect(tokens[pre.vocab - 1]).toBe(`[PAD${pre.vocab - 1}]`);
  expect(p.kv.get("tokenizer.ggml.merges")!.value).toEqual([]);

  // Tensors: names, shapes, offsets aligned and packed in order, file size.
  const names = p.tensors.map((t) => t.name);
  expect(new Set(names).size).toBe(names.length);
  const D = pre.hidden, q = pre.heads * pre.headDim, kv = pre.kvHeads * pre.headDim;
  const want = new Map<string, number[]>([["token_embd.weight", [D, pre.vocab]], ["output_norm.weight", [D]], ["output.weight", [D, pre.vocab]]]);
  if (pre.ropeScaling) want.set("rope_freqs.weight", [pre.headDim / 2]);
  for (let i = 0; i < L; i++) {
    const b = `blk.${i}.`;
    want.set(b + "attn_norm.weight", [D]).set(b + "attn_q.weight", [D, q]).set(b + "attn_k.weight", [D, kv])
      .set(b + "attn_v.weight", [D, kv]).set(b + "attn_output.weight", [q, D]).set(b + "ffn_norm.weight", [D]);
    if ((i + 1) % pre.interleaveMoe === 0) {
      const F = pre.expertFF, E = pre.experts;
      want.set(b + "ffn_gate_inp.weight", [D, E]).set(b + "ffn_gate_exps.weight", [D, F, E]).set(b + "ffn_up_exps.weight", [D, F, E])
        .set(b + "ffn_down_exps.weight", [F, D, E]).set(b + "ffn_gate_shexp.weight", [D, F]).set(b + "ffn_up_shexp.weight", [D, F])
        .set(b + "ffn_down_shexp.weight", [F, D]);
    } else {
      want.set(b + "ffn_gate.weight", [D, pre.denseFF]).set(b + "ffn_up.weight", [D, pre.denseFF]).set(b + "ffn_down.weight", [pre.denseFF, D]);
    }
  }
  expect(p.tensors.length).toBe(want.size);
  for (const t of p.tensors) expect(t.ne, t.name).toEqual(want.get(t.name));
  let expectedOffset = 0;
  for (const t of p.tensors) {
    expect(t.offset % 32, t.name).toBe(0);
    expect(t.offset, t.name).toBe(expectedOffset);
    expect(t.ne[0] % SIZES[t.type][0], t.name).toBe(0);
    expectedOffset = Math.ceil((t.offset + bytesOf(t)) / 32) * 32;
    if (/norm|gate_inp|rope_freqs/.test(t.name)) expect(t.type, t.name).toBe(0); // F32
  }
  expect(p.dataStart % 32).toBe(0);
  expect(p.size).toBe(p.dataStart + expectedOffset);
}

describe("moescope synth", () => {
  it("tiny-scout F32: structure, init statistics, the fixture's llama3 rope factors", async () => {
    const out = path.join(tmp, "tiny-scout-f32.gguf");
    const size = await synthesize({ preset: "tiny-scout", type: "F32", out, seed: 1, log: quiet });
    const p = parseGguf(out);
    expect(p.size).toBe(size);
    checkStructure(p, "tiny-scout");
    expect(p.kv.get("general.file_type")?.value).toBe(0);
    for (const t of p.tensors) expect(t.type, t.name).toBe(0);
    expect(Array.from(tensorValues(p, "rope_freqs.weight"))).toEqual(
      [1, 1, 1, 1, 3.0655810832977295, 16, 16, 16]); // = /work/shared/fixtures/tiny-scout rope_freqs
    const q = stats(tensorValues(p, "blk.1.attn_q.weight"));
    expect(Math.abs(q.mean)).toBeLessThan(0.002);
    expect(q.std).toBeGreaterThan(0.018);
    expect(q.std).toBeLessThan(0.022);
    const norm = stats(tensorValues(p, "blk.0.attn_norm.weight"));
    expect(Math.abs(norm.mean - 1)).toBeLessThan(0.01);
    // Different tensors get different random streams; the same seed gives the same file.
    expect(tensorValues(p, "blk.0.attn_q.weight")[0]).not.toBe(tensorValues(p, "blk.1.attn_q.weight")[0]);
    const again = path.join(tmp, "again.gguf");
    await synthesize({ preset: "tiny-scout", type: "F32", out: again, seed: 1, log: quiet });
    expect(fs.readFileSync(again).equals(fs.readFileSync(out))).toBe(true);
  });

  it("tiny-maverick Q8_0: dense and MoE layers interleave, no rope_freqs", async () => {
    const out = path.join(tmp, "tiny-maverick-q8_0.gguf");
    await synthesize({ preset: "tiny-maverick", type: "Q8_0", out, log: quiet });
    const p = parseGguf(out);
    checkStructure(p, "tiny-maverick");
    expect(p.tensors.find((t) => t.name === "rope_freqs.weight")).toBeUndefined();
    expect(p.tensors.find((t) => t.name === "blk.0.ffn_gate.weight")?.type).toBe(8);
    expect(p.tensors.find((t) => t.name === "blk.1.ffn_gate_exps.weight")?.ne).toEqual([64, 32, 128]);
    expect(p.kv.get("general.file_type")?.value).toBe(7);
    const w = stats(tensorValues(p, "blk.1.ffn_down_exps.weight"));
    expect(w.std).toBeGreaterThan(0.018);
    expect(w.std).toBeLessThan(0.022);
  });

  it("small-scout Q4_K_M: llama.cpp's mix (Q6_K for output and attn_v / ffn_down of layers 2, 3)", async () => {
    const out = path.join(tmp, "small-scout-q4_k_m.gguf");
    await synthesize({ preset: "small-scout", type: "Q4_K_M", out, log: quiet });
    const p = parseGguf(out);
    checkStructure(p, "small-scout");
    const type = (n: string) => p.tensors.find((t) => t.name === n)?.type;
    // Same types as the small-scout-Q4_K_M fixture that llama.cpp's quantize tool wrote.
    expect(type("output.weight")).toBe(14);
    expect(type("token_embd.weight")).toBe(12);
    for (const i of [0, 1]) for (const n of ["attn_v", "ffn_down_exps", "ffn_down_shexp", "attn_q"]) expect(type(`blk.${i}.${n}.weight`)).toBe(12);
    for (const i of [2, 3]) for (const n of ["attn_v", "ffn_down_exps", "ffn_down_shexp"]) expect(type(`blk.${i}.${n}.weight`)).toBe(14);
    expect(p.kv.get("general.file_type")?.value).toBe(15);
    const w = stats(tensorValues(p, "blk.2.ffn_up_exps.weight"));
    expect(w.std).toBeGreaterThan(0.017);
    expect(w.std).toBeLessThan(0.023);
  });

  it("scout with --layers 1 is planned at the real shapes (header only: not written here)", async () => {
    const { buildWriter } = await import("../../engine/src/synth");
    const { writer, plan } = buildWriter({ ...PRESETS.scout, layers: 1 }, "Q4_K_M", "scout");
    expect(plan.find((t) => t.name === "token_embd.weight")?.ne).toEqual([5120, 202048]);
    expect(plan.find((t) => t.name === "blk.0.ffn_down_exps.weight")?.ne).toEqual([8192, 5120, 16]);
    // Q4_K_M on one layer: use_more_bits(0, 1) holds, so attn_v and every ffn_down are Q6_K,
    // like output; the rest Q4_K. Bytes per 256 weights: Q4_K 144, Q6_K 210.
    const q4 = (n: number) => (n / 256) * 144, q6 = (n: number) => (n / 256) * 210;
    const D = 5120, V = 202048, F = 8192, E = 16, KV = 1024;
    const data = q4(D * V) + q6(D * V) + 4 * D * 3 + 4 * 64 + // embeddings, output, three norms, rope_freqs
      q4(D * D) * 2 + q4(D * KV) + q6(D * KV) + 4 * D * E + // attention, router
      q4(D * F * E) * 2 + q6(D * F * E) + q4(D * F) * 2 + q6(D * F); // experts, shared expert
    expect(writer.fileSize() - writer.header().length).toBe(data);
    expect(writer.fileSize()).toBeGreaterThan(2.8e9);
  });

  it("Scout's rope_freqs: 1 for pairs 0-34, 16 for 35-63 (spec §5.3)", async () => {
    const { llama3RopeFactors } = await import("../../engine/src/synth");
    const r = Array.from(llama3RopeFactors(128, 500000, PRESETS.scout.ropeScaling!));
    expect(r).toEqual([...Array(35).fill(1), ...Array(29).fill(16)]);
  });

  it("refuses unknown presets and types", async () => {
    await expect(synthesize({ preset: "nope", type: "F32", out: path.join(tmp, "x.gguf"), log: quiet })).rejects.toThrow(/unknown preset nope/);
    await expect(synthesize({ preset: "tiny-scout", type: "Q3_K", out: path.join(tmp, "x.gguf"), log: quiet })).rejects.toThrow(/unknown type Q3_K/);
  });
});

describe("synth's random numbers", () => {
  // The stream synth.ts drew in TypeScript until the addon took it over (native/src/binding/
  // synth_binding.cpp): xoshiro128**, two 16-bit table indices per draw, the second kept as spare.
  function reference(state: Uint32Array, n: number, mean: number, std: number): Float32Array {
    const s = state.slice(0, 4), rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
    let spare = state[4], have = state[5] !== 0;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let k: number;
      if (have) { k = spare; have = false; } else {
        const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
        const t = s[1] << 9;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11);
        spare = r & 0xffff; have = true; k = r >>> 16;
      }
      out[i] = mean + std * NORMAL_QUANTILES[k];
    }
    state.set(s); state[4] = spare; state[5] = have ? 1 : 0;
    return out;
  }

  it("the addon draws the same float32 values as the TypeScript stream, across calls of odd lengths", () => {
    for (const [seed, stream, mean, std] of [[0, 0, 0, 0.02], [7, 123, 1, 0.02], [0xdeadbeef, 5, -0.5, 3]] as const) {
      const a = new Rng(seed, stream), b = new Rng(seed, stream);
      for (const n of [1, 1000, 4097, 3]) {
        const mine = a.normals(native, n, mean, std), ref = reference(b.state, n, mean, std);
        expect(Buffer.compare(Buffer.from(mine.buffer), Buffer.from(ref.buffer)), `seed ${seed} n ${n}`).toBe(0);
      }
      expect(Array.from(a.state)).toEqual(Array.from(b.state));
    }
    expect(() => native._synthNormals(new Uint32Array(5), NORMAL_QUANTILES, 0, 1, 4)).toThrow(/state must be a Uint32Array of 6/);
  });
});

describe("GGUF writer", () => {
  it("writes every metadata value type, arrays included, and aligned tensor data", async () => {
    const w = new GgufWriter(64);
    w.set("u8", { type: GgufValueType.UINT8, value: 200 }).set("i8", { type: GgufValueType.INT8, value: -100 })
      .set("u16", { type: GgufValueType.UINT16, value: 60000 }).set("i16", { type: GgufValueType.INT16, value: -30000 })
      .set("u32", { type: GgufValueType.UINT32, value: 4000000000 }).set("i32", { type: GgufValueType.INT32, value: -2000000000 })
      .set("f32", { type: GgufValueType.FLOAT32, value: 0.5 }).set("bool", { type: GgufValueType.BOOL, value: true })
      .set("str", { type: GgufValueType.STRING, value: "héllo" })
      .set("u64", { type: GgufValueType.UINT64, value: 2n ** 60n }).set("i64", { type: GgufValueType.INT64, value: -(2n ** 60n) })
      .set("f64", { type: GgufValueType.FLOAT64, value: Math.PI })
      .array("arr_s", GgufValueType.STRING, ["a", "", "ç"]).array("arr_i", GgufValueType.INT32, [1, -2, 3]);
    w.addTensor("a", [3], 0);
    w.addTensor("b", [32, 2], 8);
    const file = path.join(tmp, "kv.gguf");
    const size = await w.writeFile(file, (t) => [new Uint8Array(t.nbytes).fill(t.name === "a" ? 1 : 2)]);
    const p = parseGguf(file);
    expect(size).toBe(p.size);
    const v = (k: string) => p.kv.get(k)?.value;
    expect([v("u8"), v("i8"), v("u16"), v("i16"), v("u32"), v("i32"), v("f32"), v("bool"), v("str")]).toEqual(
      [200, -100, 60000, -30000, 4000000000, -2000000000, 0.5, true, "héllo"]);
    expect([v("u64"), v("i64"), v("f64"), v("general.alignment")]).toEqual([2n ** 60n, -(2n ** 60n), Math.PI, 64]);
    expect(v("arr_s")).toEqual(["a", "", "ç"]);
    expect(v("arr_i")).toEqual([1, -2, 3]);
    expect(p.dataStart % 64).toBe(0);
    expect(p.tensors.map((t) => [t.name, t.ne, t.type, t.offset])).toEqual([["a", [3], 0, 0], ["b", [32, 2], 8, 64]]);
    expect(p.buf[p.dataStart + 11]).toBe(1);
    expect(p.buf[p.dataStart + 12]).toBe(0); // padding
    expect(p.buf[p.dataStart + 64]).toBe(2);
    expect(p.size).toBe(p.dataStart + 64 + 128);
    await expect(w.writeFile(file, () => [new Uint8Array(1)])).rejects.toThrow(/gave 1 bytes, expected 12/);
  });
});
