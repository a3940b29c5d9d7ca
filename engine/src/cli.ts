/**
 * `moescope generate` and `moescope trace` (see README, "Command line"). Errors go to stderr with a
 * non-zero exit code; progress lines go to stderr so stdout stays the generated text.
 */
import * as fs from "fs";
import { parseArgs, usage, OptionSpec } from "./args";
import { Interventions, Model } from "./model";
import { readSafetensors, TensorOut, writeSafetensors } from "./safetensors";
import { FIXTURE_HOOKS, fixtureTensors } from "./fixture-tensors";
import { visionTraceInputs } from "./images/trace-inputs";

const GENERATE: OptionSpec = {
  model: { type: "string", help: "GGUF file or Hugging Face folder (default: TinyScout, models/tinyscout)" },
  prompt: { type: "string", help: "prompt text (special tokens like <|eot|> are parsed)" },
  "prompt-file": { type: "string", help: "file holding the prompt" },
  "max-tokens": { type: "number", help: "tokens to generate (default 128)" },
  temperature: { type: "number", help: "0 = greedy (default 0)" },
  "top-p": { type: "number", help: "nucleus sampling threshold (default 1)" },
  "top-k": { type: "number", help: "sample among the k most likely (default 0 = all)" },
  seed: { type: "number", help: "random seed (default 0)" },
  threads: { type: "number", help: "worker threads (default: all cores)" },
};

const TRACE: OptionSpec = {
  model: { type: "string", help: "GGUF file or Hugging Face folder (default: TinyScout, models/tinyscout)" },
  "prompt-file": { type: "string", help: "file holding the prompt" },
  prompt: { type: "string", help: "prompt text" },
  out: { type: "string", help: "output .safetensors file" },
  greedy: { type: "number", help: "greedy tokens to generate after the prompt (default 16)" },
  "logits-last": { type: "number", help: "prompt positions whose logits are written (default: all)" },
  capture: { type: "string", help: "all | none | comma-separated hook names or patterns (default all fixture tensors)" },
  "ablate-expert": { type: "string", repeat: true, help: "L:E  zero expert E's routed output in layer L" },
  "force-route": { type: "string", repeat: true, help: "L:POS:E  token at POS uses expert E in layer L" },
  steer: { type: "string", repeat: true, help: "L:FILE  add the vector in FILE (safetensors) to the residual after layer L" },
  "ablate-head": { type: "string", repeat: true, help: "L:H  zero head H's output in layer L" },
  threads: { type: "number", help: "worker threads (default: all cores)" },
  // --- images (engine/src/images, issue 7) ---
  image: { type: "string", repeat: true, help: "image file; the prompt's <|image|> placeholders are expanded to image blocks (one per --image)" },
  "pixel-values": { type: "string", help: "safetensors file with pixel_values [tiles,3,S,S] (exact model input; needs --grid)" },
  grid: { type: "string", help: "RxC tile grid of --pixel-values" },
  mmproj: { type: "string", help: "llama.cpp mmproj GGUF with the vision tower (for a GGUF text model)" },
  "max-tiles": { type: "number", help: "most tiles per image (default 16)" },
};

function readPrompt(command: string, o: Record<string, unknown>): string {
  if (typeof o.prompt === "string") return o.prompt;
  if (typeof o["prompt-file"] === "string") return fs.readFileSync(o["prompt-file"], "utf8");
  throw new Error(`${command}: give --prompt TEXT or --prompt-file F`);
}

function need(command: string, o: Record<string, unknown>, name: string, spec: OptionSpec): string {
  if (typeof o[name] !== "string") throw new Error(`${command}: --${name} is required\n${usage(command, spec)}`);
  return o[name] as string;
}

async function generate(args: string[]): Promise<number> {
  const o = parseArgs("generate", args, GENERATE);
  const model = await Model.load(o.model as string | undefined, { threads: o.threads as number | undefined });
  const prompt = readPrompt("generate", o);
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  await model.generate(prompt, {
    maxNewTokens: (o["max-tokens"] as number) ?? 128,
    temperature: (o.temperature as number) ?? 0,
    topP: (o["top-p"] as number) ?? 1,
    topK: (o["top-k"] as number) ?? 0,
    seed: (o.seed as number) ?? 0,
    signal: ac.signal,
    onToken: (t) => process.stdout.write(t.text),
  });
  process.stdout.write("\n");
  return 0;
}

function ints(flag: string, v: string, n: number): number[] {
  const parts = v.split(":");
  if (parts.length !== n || parts.some((p) => !/^-?\d+$/.test(p))) throw new Error(`trace: --${flag} expects ${n} integers separated by ':', got "${v}"`);
  return parts.map(Number);
}

export function parseInterventionFlags(o: Record<string, unknown>): Interventions {
  const iv: Interventions = {};
  for (const v of (o["ablate-expert"] as string[]) ?? []) {
    const [layer, expert] = ints("ablate-expert", v, 2);
    (iv.ablateExperts ??= []).push({ layer, expert, mode: "zero" });
  }
  for (const v of (o["force-route"] as string[]) ?? []) {
    const [layer, pos, expert] = ints("force-route", v, 3);
    (iv.forceRoutes ??= []).push({ layer, pos, expert });
  }
  for (const v of (o.steer as string[]) ?? []) {
    const k = v.indexOf(":");
    const layer = Number(v.slice(0, k));
    if (k < 0 || !Number.isInteger(layer)) throw new Error(`trace: --steer expects L:FILE, got "${v}"`);
    const file = v.slice(k + 1);
    const st = readSafetensors(file).tensors;
    const t = st.get("vector") ?? [...st.values()][0];
    if (!t) throw new Error(`trace: ${file} holds no tensor`);
    (iv.steer ??= []).push({ layer, vector: Float32Array.from(t.data) });
  }
  for (const v of (o["ablate-head"] as string[]) ?? []) {
    const [layer, head] = ints("ablate-head", v, 2);
    (iv.ablateHeads ??= []).push({ layer, head });
  }
  return iv;
}

async function trace(args: string[]): Promise<number> {
  const o = parseArgs("trace", args, TRACE);
  const outFile = need("trace", o, "out", TRACE);
  const model = await Model.load(o.model as string | undefined, { threads: o.threads as number | undefined });
  let tokens = model.tokenize(readPrompt("trace", o));
  // --- images (issue 7): expand <|image|>, encode the tiles, splice the features at <|patch|> ---
  let vision: Awaited<ReturnType<typeof visionTraceInputs>> | undefined;
  if (o.image !== undefined || o["pixel-values"] !== undefined) {
    vision = await visionTraceInputs(model, {
      prompt: tokens, images: o.image as string[] | undefined, pixelValues: o["pixel-values"] as string | undefined,
      grid: o.grid as string | undefined, mmproj: o.mmproj as string | undefined, maxTiles: o["max-tiles"] as number | undefined,
    });
    tokens = vision.tokens;
  }
  // --- end images ---
  const greedy = (o.greedy as number) ?? 16;
  const logitsLast = Math.min((o["logits-last"] as number) ?? tokens.length, tokens.length);
  const capSpec = (o.capture as string) ?? "all";
  // "all" means the fixture tensors; a LIST adds exactly those hook points.
  const names = capSpec === "none" ? [] : capSpec === "all" ? FIXTURE_HOOKS : capSpec.split(",").map((s) => s.trim());
  const interventions = parseInterventionFlags(o);
  const t0 = Date.now();
  let lastLine = 0;
  const tr = await model.run(tokens, {
    maxNewTokens: greedy,
    stopAtEog: false,
    logitsLast,
    capture: names.length ? { names } : undefined,
    interventions,
    embedOverride: vision?.embedOverride,
    captureBudgetBytes: 16 * 1024 ** 3,
    onProgress: (p) => {
      if (Date.now() - lastLine > 1000 || p.done === p.total) {
        lastLine = Date.now();
        process.stderr.write(`[trace] ${p.phase} ${p.done}/${p.total} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      }
    },
  });
  const tensors: TensorOut[] = [
    { name: "tokens", dtype: "I32", shape: [tokens.length], data: tokens },
    { name: "logits", dtype: "F32", shape: [tr.logitsRows, model.config.nVocab], data: tr.logits },
    { name: "greedy", dtype: "I32", shape: [tr.generated.length], data: tr.generated },
  ];
  if (vision) tensors.push(...vision.tensors);
  if (capSpec === "all") tensors.push(...fixtureTensors(tr));
  else for (const n of tr.names()) {
    const t = tr.get(n);
    tensors.push({ name: n, dtype: t.dtype === "i32" ? "I32" : "F32", shape: t.shape, data: t.data });
  }
  writeSafetensors(outFile, tensors, {
    format: "moescope-trace",
    model: model.path,
    capture: JSON.stringify(tr.record.capture),
    sampling: JSON.stringify(tr.record.sampling),
    interventions: JSON.stringify(tr.record.interventions),
  });
  process.stderr.write(`[trace] wrote ${tensors.length} tensors to ${outFile}\n`);
  return 0;
}

export async function main(command: string, args: string[]): Promise<number> {
  if (command === "generate") return generate(args);
  if (command === "trace") return trace(args);
  throw new Error(`unknown command ${command}`);
}
