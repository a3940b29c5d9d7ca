// `moescope install/uninstall` writes the kernelspec without Python: absolute argv, interrupt mode, logos.
import { describe, expect, it } from "vitest";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const root = path.resolve(__dirname, "..", "..");
const bin = path.join(root, "bin", "moescope.js");
const run = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env } });

describe.runIf(fs.existsSync(path.join(root, "dist/kernel/src/cli.js")))("moescope install / uninstall", () => {
  it("writes kernel.json with an absolute launcher and both logos under --prefix, and removes them", () => {
    const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-spec-"));
    run("install", "--prefix", prefix);
    const dir = path.join(prefix, "share", "jupyter", "kernels", "moescope");
    const spec = JSON.parse(fs.readFileSync(path.join(dir, "kernel.json"), "utf8"));
    expect(spec.display_name).toBe("moescope (TypeScript)");
    expect(spec.language).toBe("typescript");
    expect(spec.interrupt_mode).toBe("signal");
    expect(spec.argv).toEqual([process.execPath, bin, "kernel", "-f", "{connection_file}"]);
    for (const [f, size] of [["logo-32x32.png", 32], ["logo-64x64.png", 64]] as const) {
      const png = fs.readFileSync(path.join(dir, f));
      expect(png.subarray(1, 4).toString()).toBe("PNG");
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([size, size]);
    }
    expect(run("uninstall", "--prefix", prefix)).toMatch(/removed/);
    expect(fs.existsSync(dir)).toBe(false);
    fs.rmSync(prefix, { recursive: true, force: true });
  });
  it("installs per user under JUPYTER_DATA_DIR", () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-data-"));
    execFileSync(process.execPath, [bin, "install", "--user"], { env: { ...process.env, JUPYTER_DATA_DIR: data } });
    expect(fs.existsSync(path.join(data, "kernels", "moescope", "kernel.json"))).toBe(true);
    fs.rmSync(data, { recursive: true, force: true });
  });
});
