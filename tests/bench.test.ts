/**
 * Bench smoke test: the report has every field of the contract with sane values (not a speed check:
 * speed is measured with `npm run bench`, see BENCHMARKS.md).
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { expect, it } from "vitest";

it("npm run bench -- --json prints one object with the contract's fields", () => {
  const root = path.join(__dirname, "..");
  const out = execFileSync(process.execPath, [path.join(root, "dist/engine/src/bench.js"), "--json", "--reps", "1", "--prefill-tokens", "64",
    "--decode-tokens", "8", "--bw-mib", "64", "--capture", "routing", "--model", path.join(root, "tests/fixtures/golden/tiny-maverick/model.gguf")], { encoding: "utf8" });
  const r = JSON.parse(out.trim().split("\n").pop()!);
  for (const k of ["prefill_tps", "decode_tps", "bytes_per_token", "read_bw_gbs", "bw_fraction", "peak_rss_mb", "threads", "model"]) expect(r, k).toHaveProperty(k);
  expect(r.prefill_tps).toBeGreaterThan(0);
  expect(r.decode_tps).toBeGreaterThan(0);
  expect(r.read_bw_gbs).toBeGreaterThan(0);
  expect(r.bw_fraction).toBeCloseTo((r.decode_tps * r.bytes_per_token) / (r.read_bw_gbs * 1e9), 3);
  // tiny Maverick: attention + dense FFN on even layers, one routed expert + shared expert on odd layers, plus the head.
  // All F32 (4 bytes): per layer q/k/v/o = 64x64 + 2x64x32 + 64x64; dense = 3x64x128; MoE = router 64x128
  // + one expert 3x64x32 + the shared expert 3x64x32; head 64x675. The other 127 experts are never read.
  const attn = 64 * 64 + 2 * 64 * 32 + 64 * 64, dense = 3 * 64 * 128, moe = 64 * 128 + 2 * 3 * 64 * 32, head = 64 * 675;
  expect(r.bytes_per_token).toBe(4 * (4 * attn + 2 * dense + 2 * moe + head));
  expect(r.capture_overhead).toBeTypeOf("number");
  expect(r.model).toMatch(/tiny-maverick/);
});
