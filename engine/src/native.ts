/**
 * The only place that loads the compiled addon (build/Release/moescope.node, made by `npm install`
 * through cmake-js). Types here mirror native/src/binding/*.cpp.
 */
import * as fs from "fs";
import * as path from "path";
import { MoescopeError } from "./errors";

export interface NativeLayerPlan {
  useRope: boolean;
  chunkedAttn: boolean;
  qkNorm: boolean;
  temperatureTuning: boolean;
  isMoe: boolean;
}

export interface NativeInfo {
  path: string;
  format: "gguf" | "hf";
  source: string;
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFfExp: number;
  nFf: number;
  nExpert: number;
  nExpertUsed: number;
  attnChunk: number;
  ropeTheta: number;
  ropeScaling: string;
  rmsEps: number;
  contextLength: number;
  imageTokenId: number;
  layers: NativeLayerPlan[];
  bosId: number;
  eosId: number;
  addBos: boolean;
  eogIds: number[];
  mappedBytes: number;
  activeBytesPerToken: number;
  describe: string;
  device: "cpu" | "cuda";  // issue 9
  deviceName: string;
  dotKernel: string;
  threads: number;
}

export interface NativeCaptured {
  name: string;
  dtype: "f32" | "i32";
  shape: number[];
  data: Float32Array | Int32Array;
  positions: Float64Array;
}

export interface NativeRunResult {
  generated: Int32Array;
  logits: Float32Array;
  logitsRows: number;
  stopReason: "eog" | "length" | "none";
  prefillSeconds: number;
  decodeSeconds: number;
  captured: NativeCaptured[];
}

export type NativeEvent = { type: "token"; token: number } | { type: "progress"; phase: string; done: number; total: number };

export interface NativeModel {
  info(): NativeInfo;
  tokenize(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
  detokenize(ids: Int32Array | number[]): Buffer;
  tokenBytes(id: number): Buffer;
  tokenId(text: string): number;
  hookNames(): string[];
  estimateCapture(plan: object, nTokens: number): number;
  run(request: object, cancel: NativeCancelFlag | null, onEvent: ((e: NativeEvent) => void) | null): Promise<NativeRunResult>;
}

export interface NativeCancelFlag {
  cancel(): void;
  readonly cancelled: boolean;
}

export interface Addon {
  loadModel(path: string, device?: "cpu" | "cuda" | "auto"): Promise<NativeModel>;
  /** Issue 9: whether this addon has the CUDA backend and how many devices it sees. */
  cudaStatus(): { compiled: boolean; devices: number };
  /** Issue 9: device read bandwidth in bytes/s over a buffer of `mib` MiB (throws without a GPU). */
  cudaReadBandwidth(mib?: number): number;
  CancelFlag: new () => NativeCancelFlag;
  nativeSpin(ms: number, cancel: NativeCancelFlag | null): Promise<void>;
  setThreads(n: number): void;
  [testExport: string]: unknown;
}

let cached: Addon | undefined;

export function addon(): Addon {
  if (cached) return cached;
  // Compiled code runs from dist/engine/src, tests from engine/src: find the package root either way.
  let root = __dirname;
  while (!fs.existsSync(path.join(root, "package.json")) && path.dirname(root) !== root) root = path.dirname(root);
  const candidates = [path.join(root, "build", "Release", "moescope.node"), path.join(root, "build", "Debug", "moescope.node")];
  const failures: string[] = [];
  for (const c of candidates) {
    try {
      cached = require(c) as Addon;
      return cached;
    } catch (e) {
      failures.push(`${c}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new MoescopeError(
    `could not load the moescope native addon:\n  ${failures.join("\n  ")}\nPossible solutions:\n` +
      `  - build it: npm run build:native (needs cmake and a C++17 compiler)\n  - reinstall: npm install`,
    "ADDON_LOAD",
  );
}
