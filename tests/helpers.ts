/**
 * Shared test helpers: fixture paths (copies of ../shared/fixtures under tests/fixtures/golden) and
 * error measures that print the first values and the worst difference when they fail.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readSafetensors, StTensor } from "../engine/src/safetensors";

export const FIXTURES = path.join(__dirname, "fixtures", "golden");
export const fixture = (...p: string[]) => path.join(FIXTURES, ...p);
export const prompt = (name: string) => fs.readFileSync(fixture("prompts", `${name}.txt`), "utf8");

/** A temporary copy of a fixture's Hugging Face folder with its config.json's text_config patched. */
export function hfCopyWith(model: string, textConfig: Record<string, unknown>, prefix = "moescope-hf-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const f of fs.readdirSync(fixture(model, "hf"))) fs.copyFileSync(fixture(model, "hf", f), path.join(dir, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  Object.assign(cfg.text_config, textConfig);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
  return dir;
}

export function golden(model: string, g: string): Map<string, StTensor> {
  return readSafetensors(fixture(model, g, "golden.safetensors")).tensors;
}
export function ref64(model: string, g: string): Map<string, StTensor> | undefined {
  const f = fixture(model, g, "ref64.safetensors");
  return fs.existsSync(f) ? readSafetensors(f).tensors : undefined;
}

type Arr = ArrayLike<number>;

/** Relative Frobenius error ||a - b|| / ||b||. */
export function relErr(a: Arr, b: Arr): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) {
    n += (a[i] - b[i]) ** 2;
    d += b[i] ** 2;
  }
  return Math.sqrt(n / d);
}

export function maxAbs(a: Arr, b: Arr): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A readable failure: the measure, the tolerance, the first values and where the worst difference is. */
export function describeDiff(what: string, a: Arr, b: Arr, err: number, tol: number): string {
  let worst = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > Math.abs(a[worst] - b[worst])) worst = i;
  const first = (x: Arr) => Array.from({ length: Math.min(5, x.length) }, (_, i) => x[i].toPrecision(6)).join(", ");
  return `${what}: error ${err.toExponential(2)} > ${tol.toExponential(0)}; ours [${first(a)}] vs [${first(b)}]; worst at ${worst}: ${a[worst]} vs ${b[worst]}`;
}

export function expectClose(what: string, a: Arr, b: Arr, tol: number, measure: "rel" | "max" = "rel"): number {
  const err = measure === "rel" ? relErr(a, b) : maxAbs(a, b);
  if (!(err <= tol)) throw new Error(describeDiff(what, a, b, err, tol));
  return err;
}

export function sameInts(what: string, a: Arr, b: Arr): void {
  const x = Array.from(a), y = Array.from(b);
  if (x.length !== y.length || x.some((v, i) => v !== y[i])) {
    const i = x.findIndex((v, k) => v !== y[k]);
    throw new Error(`${what}: differ at ${i} (${x.length} vs ${y.length} values): ours ${x.slice(Math.max(0, i - 2), i + 5)} vs ${y.slice(Math.max(0, i - 2), i + 5)}`);
  }
}
