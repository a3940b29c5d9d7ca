/**
 * Bad checkpoints get a clear error (a MoescopeError with a code, naming the file) and never crash
 * or hang the process: hand-made corruptions of each kind the issue lists, then a seeded fuzz pass
 * that mutates the fixture files thousands of times.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { Model } from "../../engine/src/model";
import { MoescopeError } from "../../engine/src/errors";
import { fixture } from "../helpers";
import { walkGguf } from "./gguf-walk";

const tmp = fs.mkdtempSync(path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "moescope-bad-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const GGUF = fs.readFileSync(fixture("tiny-scout-q8_0", "model.gguf"));

async function loadError(file: string): Promise<MoescopeError | undefined> {
  try {
    const m = await Model.load(file);
    // A file that loads must also run.
    await m.run([1, 2, 3]);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(MoescopeError);
    return e as MoescopeError;
  }
}

async function expectGgufError(name: string, mutate: (b: Buffer) => Buffer, code: string | RegExp, text?: RegExp) {
  const file = path.join(tmp, `${name}.gguf`);
  fs.writeFileSync(file, mutate(Buffer.from(GGUF)));
  const e = await loadError(file);
  expect(e, `${name} should fail`).toBeDefined();
  expect(e!.code).toMatch(code);
  expect(e!.message).toContain(file);
  if (text) expect(e!.message).toMatch(text);
}

describe("GGUF: each kind of corruption has its own clear error", () => {
  const w = walkGguf(GGUF);
  const t0 = w.tensors.find((t) => t.name === "blk.0.attn_q.weight")!;
  const t1 = w.tensors.find((t) => t.name === "blk.0.attn_k.weight")!;
  it("bad magic", () => expectGgufError("magic", (b) => (b.write("GGML", 0), b), "GGUF_BAD_MAGIC"));
  it("unsupported version", () => expectGgufError("version", (b) => (b.writeUInt32LE(7, 4), b), "GGUF_BAD_VERSION"));
  it("absurd tensor count", () => expectGgufError("count", (b) => (b.writeBigUInt64LE(1n << 40n, w.tensorCountAt), b), "GGUF_BAD_COUNT"));
  // Cut inside the tokenizer arrays: the string count no longer fits what is left of the file.
  it("truncated header", () => expectGgufError("trunc-header", (b) => b.subarray(0, 5000), /GGUF_TRUNCATED|GGUF_BAD_ARRAY/));
  it("truncated in the fixed header", () => expectGgufError("trunc-fixed", (b) => b.subarray(0, 20), "GGUF_TRUNCATED"));
  it("truncated data", () => expectGgufError("trunc-data", (b) => b.subarray(0, b.length - 1000), "GGUF_BAD_OFFSET", /past the end/));
  it("absurd dimension", () => expectGgufError("dim", (b) => (b.writeBigUInt64LE(1n << 50n, t0.dimsAt[1]), b), "GGUF_BAD_DIMS"));
  it("offset past the end", () => expectGgufError("offset", (b) => (b.writeBigUInt64LE(BigInt(b.length), t0.offsetAt), b), "GGUF_BAD_OFFSET"));
  it("overlapping tensors", () => expectGgufError("overlap", (b) => (b.writeBigUInt64LE(t0.offset, t1.offsetAt), b), "GGUF_OVERLAP"));
  it("unknown tensor type", () => expectGgufError("type", (b) => (b.writeUInt32LE(99, t0.typeAt), b), "GGUF_BAD_TYPE", /blk\.0\.attn_q/));
  it("missing tensor", () => expectGgufError("missing", (b) => (b.write("x", t0.nameAt + 8 + "blk.0.attn_".length), b), "MODEL_MISSING_TENSOR", /blk\.0\.attn_q\.weight/));
  it("shape mismatch", () => expectGgufError("shape", (b) => {
    // Swap attn_q's two dims (64x64 stays 64x64), so change attn_k's [64, 32] into [32, 64]: same bytes, wrong shape.
    b.writeBigUInt64LE(32n, t1.dimsAt[0]);
    b.writeBigUInt64LE(64n, t1.dimsAt[1]);
    return b;
  }, "MODEL_SHAPE_MISMATCH", /attn_k/));
  it("unknown architecture", () => expectGgufError("arch", (b) => {
    const at = w.kvs.get("general.architecture")!;
    b.write("qwen", at + 8 + 2); // "llama4" -> "llqwen"
    return b;
  }, "CONFIG_UNKNOWN_ARCH"));
  it("a missing file", async () => {
    const e = await loadError(path.join(tmp, "nope.gguf"));
    expect(e!.code).toBe("MODEL_NOT_FOUND");
  });
});

describe("Hugging Face folders: config, safetensors and tokenizer errors", () => {
  const src = fixture("tiny-scout", "hf");
  function copyHf(name: string, edit: (dir: string) => void): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
    edit(dir);
    return dir;
  }
  const st = fs.readFileSync(path.join(src, "model.safetensors"));
  const hlen = Number(st.readBigUInt64LE(0));
  const header = JSON.parse(st.subarray(8, 8 + hlen).toString());
  const withHeader = (h: unknown) => {
    let js = JSON.stringify(h);
    js += " ".repeat(Math.max(0, hlen - js.length));
    if (js.length !== hlen) throw new Error("header grew");
    return Buffer.concat([st.subarray(0, 8), Buffer.from(js), st.subarray(8 + hlen)]);
  };
  const cases: [string, (dir: string) => void, string][] = [
    ["wrong dtype", (d) => fs.writeFileSync(path.join(d, "model.safetensors"), withHeader({ ...header, "language_model.model.norm.weight": { ...header["language_model.model.norm.weight"], dtype: "F8_E4M3" } })), "SAFETENSORS_BAD_DTYPE"],
    ["offsets past the end", (d) => fs.writeFileSync(path.join(d, "model.safetensors"), withHeader({ ...header, "language_model.model.norm.weight": { ...header["language_model.model.norm.weight"], data_offsets: [0, 1e12] } })), "SAFETENSORS_BAD_OFFSETS"],
    ["shape mismatch with the data", (d) => fs.writeFileSync(path.join(d, "model.safetensors"), withHeader({ ...header, "language_model.model.norm.weight": { ...header["language_model.model.norm.weight"], shape: [65] } })), "SAFETENSORS_SHAPE_MISMATCH"],
    ["header length past the end", (d) => { const b = Buffer.from(st); b.writeBigUInt64LE(1n << 40n, 0); fs.writeFileSync(path.join(d, "model.safetensors"), b); }, "SAFETENSORS_BAD_HEADER"],
    ["truncated file", (d) => fs.writeFileSync(path.join(d, "model.safetensors"), st.subarray(0, st.length - 100)), "SAFETENSORS_BAD_OFFSETS"],
    ["config: missing hidden_size", (d) => { const c = JSON.parse(fs.readFileSync(path.join(d, "config.json"), "utf8")); delete c.text_config.hidden_size; fs.writeFileSync(path.join(d, "config.json"), JSON.stringify(c)); }, "CONFIG_MISSING_KEY"],
    ["config: unknown architecture", (d) => fs.writeFileSync(path.join(d, "config.json"), JSON.stringify({ architectures: ["MistralForCausalLM"], hidden_size: 64 })), "CONFIG_UNKNOWN_ARCH"],
    ["config: not JSON", (d) => fs.writeFileSync(path.join(d, "config.json"), "{ hidden_size: 64"), "JSON_INVALID"],
    ["config: sizes that do not match the weights", (d) => { const c = JSON.parse(fs.readFileSync(path.join(d, "config.json"), "utf8")); c.text_config.intermediate_size = 97; fs.writeFileSync(path.join(d, "config.json"), JSON.stringify(c)); }, "MODEL_SHAPE_MISMATCH"],
    ["tokenizer: not JSON", (d) => fs.writeFileSync(path.join(d, "tokenizer.json"), "[1, 2"), "JSON_INVALID"],
  ];
  for (const [name, edit, code] of cases)
    it(name, async () => {
      const dir = copyHf(name.replace(/\W+/g, "-"), edit);
      const e = await loadError(dir);
      expect(e, name).toBeDefined();
      expect(e!.code).toBe(code);
      expect(e!.message).toContain(dir);
    });
});

// Deterministic PRNG so a failure can be replayed.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe("fuzz: mutated fixture files never crash the process", () => {
  it("3000 mutated GGUF files (fixed seed)", async () => {
    const r = rng(1234);
    const w = walkGguf(GGUF);
    const headerEnd = Number(w.tensors[w.tensors.length - 1].offsetAt) + 8;
    const file = path.join(tmp, "fuzz.gguf");
    let failed = 0, loaded = 0;
    const t0 = Date.now();
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(GGUF);
      const kind = Math.floor(r() * 4);
      let out = b;
      if (kind === 0) out = b.subarray(0, Math.floor(r() * b.length));
      else if (kind === 1) for (let k = 0; k < 1 + Math.floor(r() * 8); k++) b[Math.floor(r() * headerEnd)] = Math.floor(r() * 256);
      else if (kind === 2) {
        const at = Math.floor(r() * (headerEnd - 8));
        const vals = [0n, 1n, 0xffffffffffffffffn, 1n << 32n, BigInt(Math.floor(r() * 2 ** 31))];
        b.writeBigUInt64LE(vals[Math.floor(r() * vals.length)], at);
      } else {
        const t = w.tensors[Math.floor(r() * w.tensors.length)];
        const fields = [t.typeAt, t.offsetAt, t.nDimsAt, ...t.dimsAt];
        b.writeUInt32LE(Math.floor(r() * 2 ** 32), fields[Math.floor(r() * fields.length)]);
      }
      fs.writeFileSync(file, out);
      const e = await loadError(file);
      if (e) failed++;
      else loaded++;
    }
    expect(failed + loaded).toBe(3000);
    expect(failed).toBeGreaterThan(1000);
    console.log(`GGUF fuzz: ${failed} rejected with an error, ${loaded} loaded and ran, ${Date.now() - t0} ms`);
  });

  it("1500 mutated safetensors headers and config files (fixed seed)", async () => {
    const r = rng(99);
    const src = fixture("tiny-scout", "hf");
    const dir = path.join(tmp, "fuzz-hf");
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
    const st = fs.readFileSync(path.join(src, "model.safetensors"));
    const cfg = fs.readFileSync(path.join(src, "config.json"));
    const hlen = Number(st.readBigUInt64LE(0));
    let failed = 0;
    for (let i = 0; i < 1500; i++) {
      const s = Buffer.from(st), c = Buffer.from(cfg);
      if (i % 2 === 0) for (let k = 0; k < 1 + Math.floor(r() * 4); k++) s[Math.floor(r() * (hlen + 8))] = Math.floor(r() * 256);
      else for (let k = 0; k < 1 + Math.floor(r() * 4); k++) c[Math.floor(r() * c.length)] = " 0123456789-e.,:{}[]\"xtruefalsn"[Math.floor(r() * 31)].charCodeAt(0);
      fs.writeFileSync(path.join(dir, "model.safetensors"), s);
      fs.writeFileSync(path.join(dir, "config.json"), c);
      if (await loadError(dir)) failed++;
    }
    expect(failed).toBeGreaterThan(500);
  });
});
