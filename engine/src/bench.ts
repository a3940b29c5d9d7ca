/**
 * `npm run bench -- --model FILE [--threads N] [--capture none|routing|LIST] [--json] [--reps N] [--precision exact|fast] [--kv-cache f32|bf16]`
 *
 * One run reports: prefill tokens/s (512-token prompt), decode tokens/s (128 tokens), the weight
 * bytes one decoded token reads, this machine's streaming-read bandwidth (probed in this process with
 * the same threads), their ratio, and peak RSS. With --capture X the decode is also run with that
 * capture, interleaved with the plain runs, and the overhead is reported. Medians of --reps runs
 * (default 3): the machines are shared and noisy. Progress goes to stderr.
 */
import * as path from "path";
import { parseArgs, OptionSpec } from "./args";
import { Model, RunOptions } from "./model";
import { KvCacheType } from "./memory";
import { addon } from "./native";

const SPEC: OptionSpec = {
  model: { type: "string", help: "GGUF file or Hugging Face folder (default: the tiny Scout fixture)" },
  threads: { type: "number", help: "worker threads (default: all cores)" },
  capture: { type: "string", help: "also measure decode with this capture (routing, all, hook names)" },
  json: { type: "boolean", help: "print one JSON object" },
  reps: { type: "number", help: "repetitions per measurement (default 3)" },
  "prefill-tokens": { type: "number", help: "prompt length for prefill (default 512)" },
  "decode-tokens": { type: "number", help: "tokens to decode (default 128)" },
  "bw-mib": { type: "number", help: "size of the bandwidth probe buffer (default 1024)" },
  precision: { type: "string", help: "exact (default) or fast (int8 activations, not exact)" },
  "kv-cache": { type: "string", help: "f32 (default) or bf16 (half the KV memory, not exact)" },
  device: { type: "string", help: "cpu (default), cuda or auto; on cuda the bandwidth probe reads device memory (issue 9)" },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export async function bench(args: string[]): Promise<Record<string, unknown>> {
  const o = parseArgs("bench", args, SPEC);
  const file = (o.model as string) ?? path.join(__dirname, "..", "..", "..", "tests", "fixtures", "golden", "tiny-scout", "model.gguf");
  const reps = (o.reps as number) ?? 3;
  const nPrefill = (o["prefill-tokens"] as number) ?? 512;
  const nDecode = (o["decode-tokens"] as number) ?? 128;
  const device = ((o.device as string) ?? "cpu") as "cpu" | "cuda" | "auto";
  const model = await Model.load(file, { threads: o.threads as number | undefined, device });
  const precision = ((o.precision as string) ?? "exact") as "exact" | "fast";
  if (precision !== "exact" && precision !== "fast") throw new Error(`--precision must be exact or fast`);
  const kvCache = ((o["kv-cache"] as string) ?? "f32") as KvCacheType;
  if (kvCache !== "f32" && kvCache !== "bf16") throw new Error(`--kv-cache must be f32 or bf16`);
  const c = model.config;
  log(`${path.basename(file)}: ${c.nLayer} layers, hidden ${c.nEmbd}, ${c.nExpert} experts, ${(c.mappedBytes / 2 ** 20).toFixed(0)} MiB mapped, ${c.threads} threads, kernels ${c.dotKernel}`);
  // Ordinary (non-special) ids spread over the vocabulary.
  const prompt = Int32Array.from({ length: nPrefill }, (_, i) => (i * 7919 + 13) % Math.min(c.nVocab, Math.max(256, c.bosId > 0 ? c.bosId : c.nVocab)));
  await model.run(prompt.subarray(0, 16), { maxNewTokens: 4, stopAtEog: false }); // warm the page cache and threads

  // CPU time per token (all threads) is reported beside wall-clock speed: on a shared machine it
  // moves far less than tokens/s when other processes compete for the cores.
  const prefill: number[] = [], prefillCpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t = await model.run(prompt, { precision, kvCache });
    const c = process.cpuUsage(c0);
    prefillCpu.push((c.user + c.system) / 1000 / nPrefill);
    prefill.push(nPrefill / t.timing.prefillSeconds);
    log(`prefill ${r + 1}/${reps}: ${prefill[r].toFixed(1)} tokens/s`);
  }

  const decodeOnce = async (opts: RunOptions) => {
    const t = await model.run(prompt.subarray(0, 16), { maxNewTokens: nDecode, stopAtEog: false, precision, kvCache, ...opts });
    // Without a capture the last sampled token is not fed back; with one it is (its routing is recorded).
    const forwards = opts.capture ? t.generated.length : t.generated.length - 1;
    return forwards / t.timing.decodeSeconds;
  };
  const decode: number[] = [], decodeCap: number[] = [];
  const capture = o.capture as string | undefined;
  for (let r = 0; r < reps; r++) {
    decode.push(await decodeOnce({}));
    log(`decode ${r + 1}/${reps}: ${decode[r].toFixed(2)} tokens/s`);
    if (capture && capture !== "none") {
      decodeCap.push(await decodeOnce({ capture: { names: capture, positions: "last" } }));
      log(`decode with capture ${capture} ${r + 1}/${reps}: ${decodeCap[r].toFixed(2)} tokens/s`);
    }
  }
  // Peak RSS of the model's own work, read before the probe allocates its buffer.
  const peakRss = process.resourceUsage().maxRSS / 1024;
  const bw =
    c.device === "cuda"
      ? addon().cudaReadBandwidth((o["bw-mib"] as number) ?? 4096) / 1e9
      : (addon() as unknown as { _readBandwidth(mib: number, reps: number): number })._readBandwidth((o["bw-mib"] as number) ?? 1024, 5);
  log(`read bandwidth: ${bw.toFixed(2)} GB/s`);
  const decodeTps = median(decode);
  const result: Record<string, unknown> = {
    model: path.resolve(file),
    threads: c.threads,
    prefill_tps: +median(prefill).toFixed(2),
    decode_tps: +decodeTps.toFixed(3),
    prefill_cpu_ms_per_token: +median(prefillCpu).toFixed(3),
    bytes_per_token: c.activeBytesPerToken,
    read_bw_gbs: +bw.toFixed(3),
    bw_fraction: +((decodeTps * c.activeBytesPerToken) / (bw * 1e9)).toFixed(4),
    peak_rss_mb: +peakRss.toFixed(1),
    mapped_mb: +(c.mappedBytes / 2 ** 20).toFixed(1),
    kernels: c.dotKernel,
    precision,
    kv_cache: kvCache,
    device: c.deviceName,
  };
  if (decodeCap.length) {
    result.capture = capture;
    result.decode_tps_capture = +median(decodeCap).toFixed(3);
    result.capture_overhead = +(1 - median(decodeCap) / decodeTps).toFixed(4);
  }
  return result;
}

async function main() {
  const args = process.argv.slice(2);
  const r = await bench(args);
  if (args.includes("--json")) console.log(JSON.stringify(r));
  else for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(20)} ${v}`);
}

if (require.main === module)
  main().catch((e) => {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exitCode = 1;
  });
