// A small streaming GGUF v3 writer (the format llama.cpp reads; spec: ggml's docs/gguf.md).
// Layout: magic "GGUF", version 3, tensor count (u64), KV count (u64); the metadata KVs; the tensor
// infos (name, dims, ggml `ne` fastest-first, type, offset into the data section); padding to
// `general.alignment` (32 unless set); the tensor data, each tensor starting at a multiple of the
// alignment. All integers little-endian, strings are u64 length + UTF-8 bytes without a NUL.
//
// Use: add metadata and declare every tensor first (sizes must be known up front because the
// header holds the offsets), then `writeFile(path, source)`; `source` is asked for each tensor's
// bytes in declaration order and may hand them over in chunks, so a many-GB file never has to be
// in memory.
import * as fs from "fs";

export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

// ggml tensor element types this writer can size: id -> [name, block size, bytes per block].
export const GGML_TYPES: Record<number, [string, number, number]> = {
  0: ["F32", 1, 4], 1: ["F16", 1, 2], 2: ["Q4_0", 32, 18], 3: ["Q4_1", 32, 20], 6: ["Q5_0", 32, 22],
  7: ["Q5_1", 32, 24], 8: ["Q8_0", 32, 34], 9: ["Q8_1", 32, 36], 10: ["Q2_K", 256, 84], 11: ["Q3_K", 256, 110],
  12: ["Q4_K", 256, 144], 13: ["Q5_K", 256, 176], 14: ["Q6_K", 256, 210], 15: ["Q8_K", 256, 292],
  24: ["I8", 1, 1], 25: ["I16", 1, 2], 26: ["I32", 1, 4], 27: ["I64", 1, 8], 28: ["F64", 1, 8], 30: ["BF16", 1, 2],
};

export function ggmlTypeId(name: string): number {
  for (const [id, [n]] of Object.entries(GGML_TYPES)) if (n === name) return Number(id);
  throw new Error(`unknown ggml type ${name}`);
}

/** Bytes of a tensor of the given ggml type and shape (ne[0] must be a multiple of the block size). */
export function tensorBytes(type: number, ne: readonly number[]): number {
  const t = GGML_TYPES[type];
  if (!t) throw new Error(`unknown ggml type id ${type}`);
  const [name, bs, ts] = t;
  if (ne[0] % bs !== 0) throw new Error(`a ${name} tensor needs ne[0] (${ne[0]}) to be a multiple of ${bs}`);
  return (ne.reduce((a, b) => a * b, 1) / bs) * ts;
}

export type GgufValue =
  | { type: GgufValueType.STRING; value: string }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.UINT64 | GgufValueType.INT64; value: bigint | number }
  | { type: Exclude<GgufValueType, GgufValueType.STRING | GgufValueType.BOOL | GgufValueType.ARRAY | GgufValueType.UINT64 | GgufValueType.INT64>; value: number }
  | { type: GgufValueType.ARRAY; elemType: GgufValueType; value: readonly (string | number | bigint | boolean)[] };

export interface TensorInfo {
  name: string;
  ne: number[]; // fastest-varying dimension first
  type: number; // ggml type id
  nbytes: number;
  offset: number; // within the data section
}

/** Yields a tensor's bytes (all of them, in order, in one or more chunks). */
export type TensorSource = (t: TensorInfo, index: number) => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

// Appends little-endian values to a growing byte buffer (the header is small: MBs at most).
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private ensure(n: number) {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number) { this.ensure(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number) { this.ensure(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number) { this.ensure(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number) { this.ensure(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number) { this.ensure(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number) { this.ensure(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number) { this.ensure(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number) { this.ensure(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: bigint | number) { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: bigint | number) { this.ensure(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  zeros(n: number) { this.ensure(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(out: ByteSink, type: GgufValueType, v: string | number | bigint | boolean) {
  switch (type) {
    case GgufValueType.UINT8: out.u8(Number(v)); break;
    case GgufValueType.INT8: out.i8(Number(v)); break;
    case GgufValueType.UINT16: out.u16(Number(v)); break;
    case GgufValueType.INT16: out.i16(Number(v)); break;
    case GgufValueType.UINT32: out.u32(Number(v)); break;
    case GgufValueType.INT32: out.i32(Number(v)); break;
    case GgufValueType.FLOAT32: out.f32(Number(v)); break;
    case GgufValueType.BOOL: out.u8(v ? 1 : 0); break;
    case GgufValueType.STRING: out.str(String(v)); break;
    case GgufValueType.UINT64: out.u64(typeof v === "bigint" ? v : Number(v)); break;
    case GgufValueType.INT64: out.i64(typeof v === "bigint" ? v : Number(v)); break;
    case GgufValueType.FLOAT64: out.f64(Number(v)); break;
    default: throw new Error(`GGUF value type ${type} cannot be an array element here`);
  }
}

export class GgufWriter {
  readonly kv = new Map<string, GgufValue>();
  readonly tensors: TensorInfo[] = [];
  private dataSize = 0;

  // general.alignment is written even at its default (32) so readers need not assume it.
  constructor(readonly alignment = 32) {
    this.kv.set("general.alignment", { type: GgufValueType.UINT32, value: alignment });
  }

  set(key: string, v: GgufValue): this {
    this.kv.set(key, v);
    return this;
  }
  string(key: string, value: string) { return this.set(key, { type: GgufValueType.STRING, value }); }
  u32(key: string, value: number) { return this.set(key, { type: GgufValueType.UINT32, value }); }
  f32(key: string, value: number) { return this.set(key, { type: GgufValueType.FLOAT32, value }); }
  bool(key: string, value: boolean) { return this.set(key, { type: GgufValueType.BOOL, value }); }
  array(key: string, elemType: GgufValueType, value: readonly (string | number | bigint | boolean)[]) {
    return this.set(key, { type: GgufValueType.ARRAY, elemType, value });
  }

  /** Declares the next tensor; data is written in declaration order. */
  addTensor(name: string, ne: number[], type: number): TensorInfo {
    if (this.tensors.some((t) => t.name === name)) throw new Error(`duplicate tensor ${name}`);
    const nbytes = tensorBytes(type, ne);
    const t: TensorInfo = { name, ne: [...ne], type, nbytes, offset: this.dataSize };
    this.tensors.push(t);
    this.dataSize = align(this.dataSize + nbytes, this.alignment);
    return t;
  }

  header(): Buffer {
    const out = new ByteSink();
    out.u32(0x46554747); // "GGUF"
    out.u32(3);
    out.u64(this.tensors.length);
    out.u64(this.kv.size);
    for (const [key, v] of this.kv) {
      out.str(key);
      out.u32(v.type);
      if (v.type === GgufValueType.ARRAY) {
        out.u32(v.elemType);
        out.u64(v.value.length);
        for (const e of v.value) writeScalar(out, v.elemType, e);
      } else {
        writeScalar(out, v.type, v.value);
      }
    }
    for (const t of this.tensors) {
      out.str(t.name);
      out.u32(t.ne.length);
      for (const d of t.ne) out.u64(d);
      out.u32(t.type);
      out.u64(t.offset);
    }
    out.zeros(align(out.length, this.alignment) - out.length);
    return out.bytes();
  }

  /** Size of the finished file in bytes (the last tensor is padded to the alignment too). */
  fileSize(): number {
    return this.header().length + this.dataSize;
  }

  async writeFile(path: string, source: TensorSource): Promise<number> {
    const fd = fs.openSync(path, "w");
    try {
      const header = this.header();
      writeAll(fd, header);
      let pos = 0; // within the data section
      const pad = Buffer.alloc(this.alignment);
      for (let i = 0; i < this.tensors.length; i++) {
        const t = this.tensors[i];
        let written = 0;
        for await (const chunk of source(t, i)) {
          writeAll(fd, chunk);
          written += chunk.length;
        }
        if (written !== t.nbytes) throw new Error(`tensor ${t.name}: source gave ${written} bytes, expected ${t.nbytes}`);
        pos += written;
        const padded = align(pos, this.alignment);
        writeAll(fd, pad.subarray(0, padded - pos));
        pos = padded;
      }
      return header.length + pos;
    } finally {
      fs.closeSync(fd);
    }
  }
}

function writeAll(fd: number, b: Uint8Array) {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

export function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
