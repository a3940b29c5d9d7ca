// `moescope synth --preset NAME --type T --out FILE.gguf [--seed S] [--layers N]`: writes a
// random-weight Llama 4 text model as a real GGUF file in llama.cpp's `llama4` layout (the tensor
// names, ne order and metadata keys of spec §5.3), so benchmarks and memory planning get real
// shapes without downloading a checkpoint. Weights are an init-like normal(0, 0.02) (norm weights
// near 1, router F32), quantised by the engine's own quantisers (`_quantize` of the addon).
// The tokenizer is a byte-level "gpt2" vocabulary (256 byte tokens, the Llama 4 special tokens,
// then `[PAD<id>]` fillers; no merges), enough for the engine to load and run the file.
// The file is streamed out tensor by tensor, a few MB at a time; the planned size is printed
// first and the command refuses to start when the disk lacks room.
import * as fs from "fs";
import * as path from "path";
import { GgufValueType, GgufWriter, TensorInfo, align, ggmlTypeId } from "./gguf-writer";

export interface SynthPreset {
  description: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  expertsUsed: number;
  expertFF: number; // llama4.expert_feed_forward_length (routed and shared experts)
  denseFF: number; // llama4.feed_forward_length (dense MLP of non-MoE layers)
  interleaveMoe: number; // layer i is MoE when (i + 1) % step == 0 (llama.cpp's rule)
  vocab: number;
  contextLength: number;
  ropeTheta: number;
  rmsEps: number;
  // llama3 RoPE scaling: written as the rope_freqs tensor, as llama.cpp's converter does.
  ropeScaling?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };
}

const SCOUT_ROPE = { factor: 16, lowFreqFactor: 1, highFreqFactor: 1, originalContext: 8192 };

export const PRESETS: Record<string, SynthPreset> = {
  "tiny-scout": {
    description: "the tiny-scout fixture's shapes",
    hidden: 64, layers: 4, heads: 4, kvHeads: 2, headDim: 16, experts: 4, expertsUsed: 1, expertFF: 96, denseFF: 128,
    interleaveMoe: 1, vocab: 675, contextLength: 131072, ropeTheta: 500000, rmsEps: 1e-5,
    ropeScaling: { factor: 16, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
  },
  "tiny-maverick": {
    description: "the tiny-maverick fixture's shapes",
    hidden: 64, layers: 4, heads: 4, kvHeads: 2, headDim: 16, experts: 128, expertsUsed: 1, expertFF: 32, denseFF: 128,
    interleaveMoe: 2, vocab: 675, contextLength: 131072, ropeTheta: 500000, rmsEps: 1e-5,
  },
  "small-scout": {
    description: "the small-scout fixtures' shapes",
    hidden: 256, layers: 4, heads: 8, kvHeads: 2, headDim: 32, experts: 4, expertsUsed: 1, expertFF: 256, denseFF: 128,
    interleaveMoe: 1, vocab: 675, contextLength: 131072, ropeTheta: 500000, rmsEps: 1e-5,
    ropeScaling: { factor: 16, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
  },
  "scout-mid": {
    description: "benchmark shape: hidden 1024, 8 layers, 8 heads / 2 KV x 128, 16 experts top-1, expert ff 2048, every layer MoE, vocab 32768",
    hidden: 1024, layers: 8, heads: 8, kvHeads: 2, headDim: 128, experts: 16, expertsUsed: 1, expertFF: 2048, denseFF: 4096,
    interleaveMoe: 1, vocab: 32768, contextLength: 131072, ropeTheta: 500000, rmsEps: 1e-5, ropeScaling: SCOUT_ROPE,
  },
  scout: {
    description: "Llama 4 Scout 17B-16E (spec §1.1)",
    hidden: 5120, layers: 48, heads: 40, kvHeads: 8, headDim: 128, experts: 16, expertsUsed: 1, expertFF: 8192,
    denseFF: 16384, interleaveMoe: 1, vocab: 202048, contextLength: 10485760, ropeTheta: 500000, rmsEps: 1e-5,
    ropeScaling: SCOUT_ROPE,
  },
  maverick: {
    description: "Llama 4 Maverick 17B-128E (spec §1.1)",
    hidden: 5120, layers: 48, heads: 40, kvHeads: 8, headDim: 128, experts: 128, expertsUsed: 1, expertFF: 8192,
    denseFF: 16384, interleaveMoe: 2, vocab: 202048, contextLength: 1048576, ropeTheta: 500000, rmsEps: 1e-5,
  },
};

// --type values: a single ggml type, or a llama.cpp-style mix.
const TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M", "Q5_K_M"] as const;
// llama.cpp's general.file_type (enum llama_ftype) for each choice.
const FILE_TYPE: Record<string, number> = {
  F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, Q4_K: 14, Q4_K_M: 15, Q5_K: 16, Q5_K_M: 17, Q6_K: 18, BF16: 32,
};

export const SPECIAL_TOKENS = [
  "<|begin_of_text|>", "<|end_of_text|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|header_start|>",
  "<|header_end|>", "<|eom|>", "<|eot|>", "<|step|>", "<|python_start|>", "<|python_end|>", "<|finetune_right_pad|>",
  "<|image_start|>", "<|image_end|>", "<|image|>", "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>",
];

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest map to U+0100...
export function byteTokens(): string[] {
  const direct = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(direct(b) ? b : 256 + extra++));
  return out;
}

// llama3 RoPE scaling as per-pair frequency divisors (llama.cpp's convert_hf_to_gguf,
// LlamaModel.generate_extra_tensors). Computed in float64 and rounded once: that reproduces the
// fixtures' rope_freqs bit for bit (float32 frequencies, as torch would give, differ in the last bits).
export function llama3RopeFactors(headDim: number, theta: number, s: NonNullable<SynthPreset["ropeScaling"]>): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  for (let j = 0; j < headDim / 2; j++) {
    const freq = 1 / Math.pow(theta, (2 * j) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[j] = 1;
    else if (wavelen > lowWavelen || s.highFreqFactor === s.lowFreqFactor) out[j] = s.factor;  // (Scout: low = high)
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[j] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

interface PlannedTensor {
  name: string;
  ne: number[];
  type: number;
  init: "normal" | "norm" | "router" | "rope";
}

// llama.cpp's use_more_bits: which layers a _M mix gives more bits (first and last eighth, every third).
function useMoreBits(i: number, n: number): boolean {
  return i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;
}

const BLOCK: Record<string, number> = { F32: 1, F16: 1, BF16: 1, Q8_0: 32, Q4_0: 32, Q4_K: 256, Q5_K: 256, Q6_K: 256 };

// The type a matrix gets under `--type`; rows whose length the format cannot hold fall back like
// llama.cpp does, but only to types moescope computes with (K-quants -> Q8_0 -> F16).
function matrixType(choice: string, name: string, layer: number, layers: number, rowLen: number, fallbacks: Set<string>): number {
  let t = choice;
  if (choice === "Q4_K_M" || choice === "Q5_K_M") {
    const base = choice === "Q4_K_M" ? "Q4_K" : "Q5_K";
    const more = name === "output.weight" ||
      ((/attn_v\.weight$/.test(name) || /ffn_down(_exps|_shexp)?\.weight$/.test(name)) && useMoreBits(layer, layers));
    t = more ? "Q6_K" : base;
  }
  let chosen = t;
  if (rowLen % BLOCK[chosen] !== 0) chosen = rowLen % 32 === 0 ? "Q8_0" : "F16";
  if (chosen !== t) fallbacks.add(`${name}: ${t} -> ${chosen} (rows of ${rowLen})`);
  return ggmlTypeId(chosen);
}

export function planTensors(p: SynthPreset, choice: string, fallbacks = new Set<string>()): PlannedTensor[] {
  const F32 = 0;
  const D = p.hidden, qDim = p.heads * p.headDim, kvDim = p.kvHeads * p.headDim;
  const L = p.layers;
  const mat = (name: string, ne: number[], layer = -1): PlannedTensor =>
    ({ name, ne, type: matrixType(choice, name, layer, L, ne[0], fallbacks), init: "normal" });
  const t: PlannedTensor[] = [];
  t.push(mat("token_embd.weight", [D, p.vocab]));
  t.push({ name: "output_norm.weight", ne: [D], type: F32, init: "norm" });
  t.push(mat("output.weight", [D, p.vocab]));
  if (p.ropeScaling) t.push({ name: "rope_freqs.weight", ne: [p.headDim / 2], type: F32, init: "rope" });
  for (let i = 0; i < L; i++) {
    const b = `blk.${i}.`;
    t.push({ name: b + "attn_norm.weight", ne: [D], type: F32, init: "norm" });
    t.push(mat(b + "attn_q.weight", [D, qDim], i));
    t.push(mat(b + "attn_k.weight", [D, kvDim], i));
    t.push(mat(b + "attn_v.weight", [D, kvDim], i));
    t.push(mat(b + "attn_output.weight", [qDim, D], i));
    t.push({ name: b + "ffn_norm.weight", ne: [D], type: F32, init: "norm" });
    if ((i + 1) % p.interleaveMoe === 0) {
      const F = p.expertFF, E = p.experts;
      t.push({ name: b + "ffn_gate_inp.weight", ne: [D, E], type: F32, init: "router" });
      t.push(mat(b + "ffn_gate_exps.weight", [D, F, E], i));
      t.push(mat(b + "ffn_up_exps.weight", [D, F, E], i));
      t.push(mat(b + "ffn_down_exps.weight", [F, D, E], i));
      t.push(mat(b + "ffn_gate_shexp.weight", [D, F], i));
      t.push(mat(b + "ffn_up_shexp.weight", [D, F], i));
      t.push(mat(b + "ffn_down_shexp.weight", [F, D], i));
    } else {
      t.push(mat(b + "ffn_gate.weight", [D, p.denseFF], i));
      t.push(mat(b + "ffn_up.weight", [D, p.denseFF], i));
      t.push(mat(b + "ffn_down.weight", [p.denseFF, D], i));
    }
  }
  return t;
}

export function buildWriter(p: SynthPreset, choice: string, presetName: string, fallbacks = new Set<string>()) {
  const w = new GgufWriter(32);
  const a = "llama4.";
  w.string("general.architecture", "llama4");
  w.string("general.name", `moescope-synth-${presetName}`);
  w.u32(a + "context_length", p.contextLength);
  w.u32(a + "embedding_length", p.hidden);
  w.u32(a + "block_count", p.layers);
  w.u32(a + "feed_forward_length", p.denseFF);
  w.u32(a + "expert_feed_forward_length", p.expertFF);
  w.u32(a + "attention.head_count", p.heads);
  w.u32(a + "attention.head_count_kv", p.kvHeads);
  w.u32(a + "attention.key_length", p.headDim);
  w.u32(a + "attention.value_length", p.headDim);
  w.u32(a + "rope.dimension_count", p.headDim);
  w.f32(a + "rope.freq_base", p.ropeTheta);
  w.f32(a + "attention.layer_norm_rms_epsilon", p.rmsEps);
  w.u32(a + "expert_count", p.experts);
  w.u32(a + "expert_used_count", p.expertsUsed);
  w.u32(a + "interleave_moe_layer_step", p.interleaveMoe);
  w.u32(a + "vocab_size", p.vocab);

  const bytes = byteTokens();
  if (p.vocab < bytes.length + SPECIAL_TOKENS.length) throw new Error(`vocab ${p.vocab} is too small`);
  const tokens = [...bytes, ...SPECIAL_TOKENS];
  const types = [...bytes.map(() => 1), ...SPECIAL_TOKENS.map(() => 3)];
  for (let id = tokens.length; id < p.vocab; id++) { tokens.push(`[PAD${id}]`); types.push(5); }
  const special = (s: string) => bytes.length + SPECIAL_TOKENS.indexOf(s);
  w.string("tokenizer.ggml.model", "gpt2");
  w.string("tokenizer.ggml.pre", "llama4");
  w.array("tokenizer.ggml.tokens", GgufValueType.STRING, tokens);
  w.array("tokenizer.ggml.token_type", GgufValueType.INT32, types);
  w.array("tokenizer.ggml.merges", GgufValueType.STRING, []);
  w.u32("tokenizer.ggml.bos_token_id", special("<|begin_of_text|>"));
  w.u32("tokenizer.ggml.eos_token_id", special("<|eot|>"));
  w.u32("tokenizer.ggml.padding_token_id", special("<|finetune_right_pad|>"));
  w.bool("tokenizer.ggml.add_bos_token", true);
  w.u32("general.file_type", FILE_TYPE[choice]);
  if (!["F32", "F16", "BF16"].includes(choice)) w.u32("general.quantization_version", 2);

  const plan = planTensors(p, choice, fallbacks);
  for (const t of plan) w.addTensor(t.name, t.ne, t.type);
  return { writer: w, plan };
}

// ---- deterministic random numbers: xoshiro128** seeded by splitmix32(seed, tensor index) ----
// Two standard normals per 32 random bits, from a table of 65536 normal quantiles (one table lookup
// each): Box-Muller's log/cos cost more than all the rest of the synthesis together. The values are
// the quantiles (i + 1/2) / 65536, so the tails stop near ±4.3 sigma. The draws themselves run in the
// addon (_synthNormals, native/src/binding/synth_binding.cpp: the same stream, 5x faster than here);
// tests/ops/synth.test.ts holds the stream written out in TypeScript and checks the two agree.
class Rng {
  // xoshiro128** s0..s3, the spare 16 bits of the last draw, whether one is spare.
  readonly state = new Uint32Array(6);
  constructor(seed: number, stream: number) {
    let x = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.state[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** n values mean + std * normal, as float32. */
  normals(addon: SynthAddon, n: number, mean: number, std: number): Float32Array {
    return addon._synthNormals(this.state, NORMAL_QUANTILES, mean, std, n);
  }
}

// Acklam's rational approximation of the inverse normal CDF (relative error below 1.2e-9).
function inverseNormalCdf(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormalCdf(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const NORMAL_QUANTILES = (() => {
  const t = new Float64Array(65536);
  for (let i = 0; i < t.length; i++) t[i] = inverseNormalCdf((i + 0.5) / t.length);
  return t;
})();

interface SynthAddon {
  _quantize(type: number, x: Float32Array): Buffer;
  _synthNormals(state: Uint32Array, table: Float64Array, mean: number, std: number, n: number): Float32Array;
}

function loadAddon(): SynthAddon {
  // From dist/engine/src (built) or engine/src (tests run the TypeScript directly).
  for (const rel of ["../../../build/Release/moescope.node", "../../build/Release/moescope.node"]) {
    const p = path.resolve(__dirname, rel);
    if (fs.existsSync(p)) return require(p);
  }
  throw new Error("the native addon build/Release/moescope.node is missing: run `npm run build:native`");
}

const CHUNK_ELEMS = 1 << 20;

function* tensorChunks(t: TensorInfo, init: PlannedTensor["init"], p: SynthPreset, seed: number, index: number,
                       addon: SynthAddon, progress: (n: number) => void): Generator<Uint8Array> {
  const rng = new Rng(seed, index);
  if (init === "rope") {
    yield new Uint8Array(llama3RopeFactors(p.headDim, p.ropeTheta, p.ropeScaling!).buffer);
    return;
  }
  const rowLen = t.ne[0];
  const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMS / rowLen));
  const std = init === "norm" ? 0.02 : 0.02;
  const mean = init === "norm" ? 1 : 0;
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const nrows = Math.min(rowsPerChunk, rows - r0);
    const x = rng.normals(addon, nrows * rowLen, mean, std);
    const bytes = t.type === 0 ? new Uint8Array(x.buffer) : addon._quantize(t.type, x);
    progress(bytes.length);
    yield bytes;
  }
}

function usage(): string {
  const lines = [
    "usage: moescope synth --preset NAME --type T --out FILE.gguf [--seed S] [--layers N]",
    `  types: ${TYPES.join(", ")} (Q4_K_M / Q5_K_M: Q6_K for output, and attn_v / ffn_down of some layers, as llama.cpp)`,
    "  presets:",
    ...Object.entries(PRESETS).map(([k, v]) => `    ${k.padEnd(14)} ${v.description}`),
  ];
  return lines.join("\n") + "\n";
}

function human(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 2 : 0)} ${u[i]}`;
}

export interface SynthOptions {
  preset: string;
  type: string;
  out: string;
  seed?: number;
  layers?: number;
  log?: (line: string) => void; // progress and notes (stderr by default)
}

/** Writes the file; returns its size in bytes. */
export async function synthesize(o: SynthOptions): Promise<number> {
  const log = o.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const base = PRESETS[o.preset];
  if (!base) throw new Error(`unknown preset ${o.preset} (known: ${Object.keys(PRESETS).join(", ")})`);
  if (!(TYPES as readonly string[]).includes(o.type)) throw new Error(`unknown type ${o.type} (known: ${TYPES.join(", ")})`);
  const p: SynthPreset = { ...base, layers: o.layers ?? base.layers };
  if (!Number.isInteger(p.layers) || p.layers < 1) throw new Error(`--layers must be a positive integer`);
  const seed = o.seed ?? 0;
  const fallbacks = new Set<string>();
  const { writer, plan } = buildWriter(p, o.type, o.preset, fallbacks);
  if (fallbacks.size) {
    // One line per kind of fallback, not per tensor (a 48-layer model would print hundreds).
    const kinds = new Map<string, number>();
    for (const f of fallbacks) { const k = f.replace(/^.*?: /, ""); kinds.set(k, (kinds.get(k) ?? 0) + 1); }
    for (const [k, n] of kinds) log(`synth: ${n} tensor(s) ${k}: the format needs whole blocks per row`);
  }

  const size = writer.fileSize();
  const params = plan.reduce((a, t) => a + t.ne.reduce((x, y) => x * y, 1), 0);
  log(`synth: ${o.preset} (${p.layers} layers, ${(params / 1e9).toFixed(3)} B parameters) as ${o.type}: planned size ${size} bytes (${human(size)})`);
  const dir = path.dirname(path.resolve(o.out));
  const st = fs.statfsSync(dir);
  let existing = 0;
  try { existing = fs.statSync(o.out).size; } catch { /* new file */ }
  const free = Number(st.bavail) * Number(st.bsize) + existing;
  if (size > free) throw new Error(`not enough disk space in ${dir}: the file needs ${human(size)}, ${human(free)} available`);

  const addon = loadAddon();
  let done = 0, lastLog = Date.now();
  const started = Date.now();
  const progress = (n: number) => {
    done += n;
    const now = Date.now();
    if (now - lastLog > 2000) {
      lastLog = now;
      const rate = done / ((now - started) / 1000);
      log(`synth: ${((100 * done) / size).toFixed(1)}% (${human(done)} of ${human(size)}, ${human(rate)}/s)`);
    }
  };
  // Written under a temporary name and renamed at the end, so an interrupted run never leaves a
  // truncated file that looks like a model.
  const partial = `${o.out}.partial`;
  let written: number;
  try {
    written = await writer.writeFile(partial, (t, i) => tensorChunks(t, plan[i].init, p, seed, i, addon, progress));
    if (written !== size) throw new Error(`internal: wrote ${written} bytes, planned ${size}`);
    fs.renameSync(partial, o.out);
  } catch (e) {
    fs.rmSync(partial, { force: true });
    throw e;
  }
  log(`synth: wrote ${o.out} (${human(written)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return written;
}

function parseArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") { out.help = "1"; continue; }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${a}`);
    if (m[2] !== undefined) out[m[1]] = m[2];
    else if (i + 1 < args.length) out[m[1]] = args[++i];
    else throw new Error(`${a} needs a value`);
  }
  return out;
}

export async function synthMain(_command: string, args: string[]): Promise<number> {
  let opts: Record<string, string>;
  try {
    opts = parseArgs(args);
  } catch (e) {
    process.stderr.write(`moescope synth: ${(e as Error).message}\n${usage()}`);
    return 2;
  }
  if (opts.help) { process.stdout.write(usage()); return 0; }
  for (const k of Object.keys(opts)) {
    if (!["preset", "type", "out", "seed", "layers"].includes(k)) {
      process.stderr.write(`moescope synth: unknown option --${k}\n${usage()}`);
      return 2;
    }
  }
  if (!opts.preset || !opts.type || !opts.out) {
    process.stderr.write(usage());
    return 2;
  }
  const num = (k: string) => {
    if (opts[k] === undefined) return undefined;
    const v = Number(opts[k]);
    if (!Number.isInteger(v)) throw new Error(`--${k} must be an integer`);
    return v;
  };
  await synthesize({ preset: opts.preset, type: opts.type, out: opts.out, seed: num("seed"), layers: num("layers") });
  return 0;
}

// Exposed for tests and tools that want the plan without writing.
export { align, NORMAL_QUANTILES, Rng };
