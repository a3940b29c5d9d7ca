/**
 * Safetensors files in TypeScript: reading (goldens, steering vectors, patches) and writing traces.
 * Only the dtypes traces use are materialised as typed arrays (F32, I32, F64, I64 → Float64Array
 * and BigInt64Array are read as numbers); anything else is reported by name.
 */
import * as fs from "fs";

export type Dtype = "F32" | "I32" | "F64" | "I64" | "F16" | "BF16";

export interface StTensor {
  dtype: Dtype;
  shape: number[];
  data: Float32Array | Int32Array | Float64Array;
}

export interface StFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

const SIZES: Record<string, number> = { F32: 4, I32: 4, F64: 8, I64: 8, F16: 2, BF16: 2 };

function fail(file: string, msg: string): never {
  const e = new Error(`${file}: ${msg}`) as Error & { code: string };
  e.code = "SAFETENSORS_INVALID";
  throw e;
}

export function readSafetensors(file: string): StFile {
  const buf = fs.readFileSync(file);
  if (buf.length < 8) fail(file, "too short for a safetensors file");
  const hlen = Number(buf.readBigUInt64LE(0));
  if (hlen > buf.length - 8) fail(file, `header length ${hlen} does not fit the ${buf.length}-byte file`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + hlen).toString("utf8"));
  } catch (e) {
    fail(file, `header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + hlen;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = t as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = t as { dtype: Dtype; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in SIZES)) fail(file, `tensor ${name} has dtype ${dtype}, not readable here`);
    const [b, e] = data_offsets;
    const n = shape.reduce((a, x) => a * x, 1);
    if (e - b !== n * SIZES[dtype] || base + e > buf.length) fail(file, `tensor ${name}: data_offsets do not match shape ${JSON.stringify(shape)}`);
    const bytes = buf.subarray(base + b, base + e);
    const copy = new Uint8Array(bytes); // aligned copy
    let data: Float32Array | Int32Array | Float64Array;
    if (dtype === "F32") data = new Float32Array(copy.buffer, 0, n);
    else if (dtype === "I32") data = new Int32Array(copy.buffer, 0, n);
    else if (dtype === "F64") data = new Float64Array(copy.buffer, 0, n);
    else if (dtype === "I64") data = Float64Array.from(new BigInt64Array(copy.buffer, 0, n), (x) => Number(x));
    else data = decodeHalf(copy, n, dtype);
    tensors.set(name, { dtype, shape, data });
  }
  return { tensors, metadata };
}

function decodeHalf(bytes: Uint8Array, n: number, dtype: "F16" | "BF16"): Float32Array {
  const u16 = new Uint16Array(bytes.buffer, 0, n);
  const out = new Float32Array(n);
  const u32 = new Uint32Array(1);
  const f32 = new Float32Array(u32.buffer);
  for (let i = 0; i < n; i++) {
    if (dtype === "BF16") {
      u32[0] = u16[i] << 16;
      out[i] = f32[0];
    } else {
      const h = u16[i], s = h >> 15 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
      out[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  return out;
}

export interface TensorOut {
  name: string;
  dtype: "F32" | "I32";
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Writes tensors in the given order; metadata values must be strings (safetensors rule). */
export function writeSafetensors(file: string, tensors: TensorOut[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, x) => a * x, 1);
    if (n !== t.data.length) throw new Error(`writeSafetensors: ${t.name} has ${t.data.length} values for shape ${JSON.stringify(t.shape)}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // keep the data 8-byte aligned
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = fs.openSync(file, "w");
  try {
    fs.writeSync(fd, head);
    fs.writeSync(fd, Buffer.from(json, "utf8"));
    for (const t of tensors) fs.writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  } finally {
    fs.closeSync(fd);
  }
}
