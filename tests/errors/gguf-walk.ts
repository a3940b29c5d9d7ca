/**
 * A minimal GGUF header walker for tests: where each metadata value and tensor-info field sits in
 * the file, so that tests can corrupt one field at a time.
 */
export interface TensorField {
  name: string;
  nameAt: number;
  nDimsAt: number;
  dimsAt: number[];
  typeAt: number;
  offsetAt: number;
  type: number;
  offset: bigint;
}

export function walkGguf(buf: Buffer): { tensorCountAt: number; kvCountAt: number; kvs: Map<string, number>; tensors: TensorField[] } {
  let p = 8;
  const tensorCountAt = p;
  const nT = Number(buf.readBigUInt64LE(p));
  p += 8;
  const kvCountAt = p;
  const nKv = Number(buf.readBigUInt64LE(p));
  p += 8;
  const str = () => {
    const n = Number(buf.readBigUInt64LE(p));
    const s = buf.subarray(p + 8, p + 8 + n).toString("utf8");
    p += 8 + n;
    return s;
  };
  const sizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (t: number) => {
    if (t === 8) str();
    else if (t === 9) {
      const et = buf.readUInt32LE(p);
      const n = Number(buf.readBigUInt64LE(p + 4));
      p += 12;
      for (let i = 0; i < n; i++) skip(et);
    } else p += sizes[t];
  };
  const kvs = new Map<string, number>();
  for (let i = 0; i < nKv; i++) {
    const k = str();
    const t = buf.readUInt32LE(p);
    p += 4;
    kvs.set(k, p);
    skip(t);
  }
  const tensors: TensorField[] = [];
  for (let i = 0; i < nT; i++) {
    const nameAt = p;
    const name = str();
    const nDimsAt = p;
    const nd = buf.readUInt32LE(p);
    p += 4;
    const dimsAt: number[] = [];
    for (let d = 0; d < nd; d++) (dimsAt.push(p), (p += 8));
    const typeAt = p;
    const type = buf.readUInt32LE(p);
    p += 4;
    const offsetAt = p;
    const offset = buf.readBigUInt64LE(p);
    p += 8;
    tensors.push({ name, nameAt, nDimsAt, dimsAt, typeAt, offsetAt, type, offset });
  }
  return { tensorCountAt, kvCountAt, kvs, tensors };
}
