/**
 * Makes `import ... from "moescope"` work in cells wherever the notebook lives, for both halves of
 * a cell's life: type-checking (tslab's converter resolves modules from the kernel's cwd, so
 * `<cwd>/node_modules/moescope/**` is forwarded to this package's root, the way tslab forwards
 * `tslab` itself) and running (a `require` that maps `moescope` and `moescope/...` to this package,
 * and falls back to this package's dependencies when the notebook folder has no node_modules).
 */
import * as fs from "fs";
import * as path from "path";
import Module from "module";

/** The folder with moescope's package.json, found from this file (works from dist/ and src/). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, "utf8")).name === "moescope") return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`moescope's package.json not found above ${__dirname}`);
    dir = up;
  }
}

/** Patches the converter's TypeScript `sys` (process-global) so type resolution finds moescope. */
export function forwardTypeResolution(tsSys: any, cwd: string, root: string): void {
  const virtual = path.join(cwd, "node_modules", "moescope");
  const fwd = (p: string): string => {
    const n = path.normalize(p);
    if (n === virtual) return root;
    if (n.startsWith(virtual + path.sep)) return path.join(root, n.slice(virtual.length + 1));
    return p;
  };
  for (const name of ["readFile", "fileExists", "directoryExists", "realpath", "getDirectories"]) {
    const orig = tsSys[name];
    if (typeof orig !== "function") continue;
    tsSys[name] = (p: string, ...rest: unknown[]) => orig.call(tsSys, fwd(p), ...rest);
  }
  const readDirectory = tsSys.readDirectory;
  tsSys.readDirectory = (p: string, ...rest: unknown[]) => readDirectory.call(tsSys, fwd(p), ...rest);
}

/** The `require` cells get. */
export function cellRequire(cwd: string, root: string): NodeJS.Require {
  const fromCwd = Module.createRequire(path.join(cwd, "__cell__.js"));
  const fromRoot = Module.createRequire(path.join(root, "package.json"));
  const req = (id: string): unknown => {
    if (id === "moescope") return fromRoot(root);
    if (id.startsWith("moescope/")) return fromRoot(path.join(root, id.slice("moescope/".length)));
    try {
      return fromCwd(id);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw e;
      return fromRoot(id);
    }
  };
  return Object.assign(req, { resolve: fromCwd.resolve, cache: fromCwd.cache, main: fromCwd.main, extensions: fromCwd.extensions }) as NodeJS.Require;
}
