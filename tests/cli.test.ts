/**
 * The command line as a user runs it: `moescope trace` writes the fixture tensor names (and hook
 * names with --capture LIST), records interventions in the metadata; `moescope generate` streams
 * reproducible text; errors name the file and exit non-zero.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { readSafetensors, writeSafetensors } from "../engine/src/safetensors";
import { expectClose, fixture, golden, sameInts } from "./helpers";

const BIN = path.join(__dirname, "..", "bin", "moescope.js");
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-cli-"));

describe("moescope trace", () => {
  it("writes the golden's tensor names, shapes and values", () => {
    const out = path.join(tmp, "p2.safetensors");
    const r = run("trace", "--model", fixture("tiny-maverick", "hf"), "--prompt-file", fixture("prompts", "p2.txt"), "--out", out);
    expect(r.status, r.stderr).toBe(0);
    const ours = readSafetensors(out).tensors, g = golden("tiny-maverick", "golden-p2");
    for (const [name, t] of g) {
      if (name === "logits_start") continue;
      expect(ours.get(name)?.shape, name).toEqual(t.shape);
      if (t.dtype === "I32") sameInts(name, ours.get(name)!.data, t.data);
      else if (!name.endsWith("attn_probs")) expectClose(name, ours.get(name)!.data, t.data, 1e-5);
    }
  });

  it("--capture LIST and intervention flags: hook-named tensors, effects, and metadata", () => {
    const steer = path.join(tmp, "steer.safetensors");
    writeSafetensors(steer, [{ name: "vector", dtype: "F32", shape: [64], data: new Float32Array(64).fill(0.25) }]);
    const out = path.join(tmp, "iv.safetensors");
    const r = run("trace", "--model", fixture("tiny-scout", "model.gguf"), "--prompt-file", fixture("prompts", "p1.txt"), "--out", out, "--greedy", "4",
      "--capture", "routing,blocks.0.hook_resid_post", "--ablate-expert", "1:1", "--force-route", "2:3:0", "--force-route", "3:5:2", "--steer", `0:${steer}`, "--ablate-head", "2:1");
    expect(r.status, r.stderr).toBe(0);
    const f = readSafetensors(out);
    expect(f.tensors.get("blocks.2.mlp.hook_expert_indices")!.data[3]).toBe(0);
    expect(f.tensors.get("blocks.3.mlp.hook_expert_indices")!.data[5]).toBe(2);
    expect(f.tensors.get("blocks.0.hook_resid_post")!.shape).toEqual([38 + 4, 64]);
    const iv = JSON.parse(f.metadata.interventions);
    expect(iv.ablateExperts).toEqual([{ layer: 1, expert: 1, mode: "zero" }]);
    expect(iv.forceRoutes).toEqual([{ layer: 2, pos: 3, expert: 0 }, { layer: 3, pos: 5, expert: 2 }]);
    expect(iv.steer[0]).toMatchObject({ layer: 0, scale: 1 });
    expect(iv.ablateHeads).toEqual([{ layer: 2, head: 1 }]);
    expect(JSON.parse(f.metadata.sampling)).toMatchObject({ maxNewTokens: 4, temperature: 0 });
  });

  it("bad input: clear errors and a non-zero exit", () => {
    const missing = run("trace", "--model", path.join(tmp, "none.gguf"), "--prompt", "x", "--out", path.join(tmp, "x.st"));
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("none.gguf");
    const badFlag = run("trace", "--model", fixture("tiny-scout", "model.gguf"), "--prompt", "x", "--out", path.join(tmp, "y.st"), "--force-route", "1:x:2");
    expect(badFlag.status).not.toBe(0);
    expect(badFlag.stderr).toMatch(/--force-route expects 3 integers/);
    const badExpert = run("trace", "--model", fixture("tiny-scout", "model.gguf"), "--prompt", "x", "--out", path.join(tmp, "z.st"), "--ablate-expert", "1:9");
    expect(badExpert.stderr).toMatch(/expert 9 is outside 0\.\.3/);
    expect(run("trace", "--nope").stderr).toMatch(/unknown option --nope/);
  });
});

describe("moescope generate", () => {
  it("streams the same text for the same seed, and differs for another", () => {
    const args = ["generate", "--model", fixture("tiny-scout", "model.gguf"), "--prompt", "The quick brown fox", "--max-tokens", "24", "--temperature", "0.9", "--top-p", "0.95"];
    const a = run(...args, "--seed", "7"), b = run(...args, "--seed", "7"), c = run(...args, "--seed", "8");
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(10);
    expect(a.stdout).toBe(b.stdout);
    expect(c.stdout).not.toBe(a.stdout);
  });
});
