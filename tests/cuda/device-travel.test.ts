/**
 * What travels to a GPU machine for native/tools/device-check.sh (native/tools/device-travel.js): the
 * device tool sends 64 MiB in all, ~30 MiB of it the carried node, addon and tools, so the tracked files
 * kept must stay under 36 MiB while every fixture the check reads is among them.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "..", "..");
const { stays } = require(path.join(root, "native", "tools", "device-travel.js")) as { stays: (f: string) => boolean };

describe("device-travel: the files a device check needs, within the device tool's budget", () => {
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8", maxBuffer: 1 << 26 }).split("\0").filter(Boolean);
  const kept = files.filter(stays);

  it("keeps the check's fixtures and the code, leaves the rest", () => {
    const g = (p: string) => `tests/fixtures/golden/${p}`;
    for (const f of [
      g("tiny-scout/model.gguf"), g("tiny-scout/hf/config.json"), g("tiny-scout/hf/model.safetensors"), g("tiny-maverick/model.gguf"),
      g("tiny-scout/golden-p1/golden.safetensors"), g("tiny-maverick/golden-p3/golden.safetensors"), g("tiny-scout/golden-long/ref64.safetensors"),
      g("tiny-scout-bf16/golden-p3/ref64.safetensors"), g("small-scout-Q4_K_M/model.gguf"), g("small-scout-Q6_K/golden-p1/ref64.safetensors"),
      g("prompts/p_long.txt"), "tests/fixtures/ref64/tiny-maverick/golden-p1.safetensors", "tests/fixtures/ref64/tiny-scout-bf16-hf/golden-p3.safetensors",
      "native/tools/device-check.js", "native/tools/device-check.sh", "engine/src/model.ts", "bin/moescope.js", "package.json",
    ])
      expect(kept, f).toContain(f);
    for (const f of [g("tiny-vision/model.gguf"), g("tiny-scout/golden-p2/golden.safetensors"), "tests/fixtures/ref64/tiny-scout/golden-p4.safetensors"])
      expect(kept, f).not.toContain(f);
  });

  it("keeps under 36 MiB of tracked files", () => {
    const bytes = kept.reduce((s, f) => s + fs.statSync(path.join(root, f)).size, 0);
    expect(bytes / 1048576).toBeLessThan(36);
  });
});
