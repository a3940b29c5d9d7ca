// Pure parts of the TypeScript interpreter: error triples and how cells resolve "moescope".
import { describe, expect, it } from "vitest";
import * as os from "os";
import * as path from "path";
import { errorOutcome, KeyboardInterrupt } from "../../kernel/src/interpreter/errors";
import { cellRequire, forwardTypeResolution, packageRoot } from "../../kernel/src/interpreter/module-paths";

describe("errorOutcome", () => {
  it("uses err.name and err.message, and a traceback from the stack starting at the name", () => {
    const e = new RangeError("too far");
    const o = errorOutcome(e);
    expect(o).toMatchObject({ status: "error", ename: "RangeError", evalue: "too far" });
    expect(o.traceback[0]).toBe("RangeError: too far");
    expect(o.traceback.some((l) => l.includes("node:internal"))).toBe(false);
  });
  it("handles thrown non-errors and interrupts", () => {
    expect(errorOutcome("text")).toMatchObject({ ename: "Error", evalue: "'text'" });
    expect(errorOutcome(new KeyboardInterrupt())).toMatchObject({ ename: "KeyboardInterrupt", evalue: "Interrupted" });
  });
});

describe("module paths", () => {
  const root = packageRoot();
  it("finds the package root", () => {
    expect(require(path.join(root, "package.json")).name).toBe("moescope");
  });
  it("forwards <cwd>/node_modules/moescope/** to the package root for the type checker", () => {
    const seen: string[] = [];
    const sys: any = { fileExists: (p: string) => (seen.push(p), true), readFile: () => "", directoryExists: () => true, realpath: (p: string) => p, getDirectories: () => [], readDirectory: () => [] };
    forwardTypeResolution(sys, "/nb", root);
    sys.fileExists("/nb/node_modules/moescope/package.json");
    sys.fileExists("/nb/node_modules/other/index.d.ts");
    expect(seen).toEqual([path.join(root, "package.json"), "/nb/node_modules/other/index.d.ts"]);
  });
  it("lets cells require moescope and its dependencies from a folder without node_modules", () => {
    const req = cellRequire(os.tmpdir(), root);
    expect((req("path") as typeof path).join).toBe(path.join);
    expect(typeof (req("moescope/dist/engine/src/display") as any).display).toBe("function");
  });
});
