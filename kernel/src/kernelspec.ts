/**
 * `moescope install` / `uninstall`: writes or removes the Jupyter kernelspec `moescope`, without
 * Python (jupyter_client's data-dir rules re-stated for the three places).
 *
 * - argv is absolute: this Node binary and this package's bin/moescope.js, so the kernel starts
 *   whatever PATH the frontend has (tslab's bare `tslab` argv is its most reported failure).
 * - interrupt_mode "signal": the one every frontend honours (VS Code sends SIGINT unless the mode
 *   is "message", and before late 2025 sent message-mode interrupts on the wrong channel). The
 *   kernel answers interrupt_request on control and shell as well, so either works.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { logoPng } from "./logo";
import { packageRoot } from "./interpreter/module-paths";

export const KERNEL_NAME = "moescope";

export type Place = { kind: "user" } | { kind: "sys-prefix" } | { kind: "prefix"; prefix: string };

function userDataDir(): string {
  if (process.env.JUPYTER_DATA_DIR) return process.env.JUPYTER_DATA_DIR;
  if (process.platform === "darwin") return path.join(os.homedir(), "Library", "Jupyter");
  if (process.platform === "win32") return path.join(process.env.APPDATA ?? path.join(os.homedir(), "AppData", "Roaming"), "jupyter");
  return path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share"), "jupyter");
}

export function kernelsDir(place: Place): string {
  switch (place.kind) {
    case "user": return path.join(userDataDir(), "kernels");
    case "prefix": return path.join(path.resolve(place.prefix), "share", "jupyter", "kernels");
    case "sys-prefix": {
      const env = process.env.CONDA_PREFIX || process.env.VIRTUAL_ENV;
      if (!env) throw new Error("--sys-prefix needs an active Python environment (VIRTUAL_ENV or CONDA_PREFIX); use --prefix PATH instead");
      return path.join(env, "share", "jupyter", "kernels");
    }
  }
}

export function kernelJson(): object {
  const root = packageRoot();
  return {
    argv: [process.execPath, path.join(root, "bin", "moescope.js"), "kernel", "-f", "{connection_file}"],
    display_name: "moescope (TypeScript)",
    language: "typescript",
    interrupt_mode: "signal",
    env: {},
    metadata: { debugger: false },
  };
}

export function install(place: Place): string {
  const dir = path.join(kernelsDir(place), KERNEL_NAME);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(kernelJson(), null, 2) + "\n");
  fs.writeFileSync(path.join(dir, "logo-32x32.png"), logoPng(32));
  fs.writeFileSync(path.join(dir, "logo-64x64.png"), logoPng(64));
  return dir;
}

/** Removes the kernelspec from `place`; returns the folder removed, or undefined if none was there. */
export function uninstall(place: Place): string | undefined {
  const dir = path.join(kernelsDir(place), KERNEL_NAME);
  if (!fs.existsSync(path.join(dir, "kernel.json"))) return undefined;
  fs.rmSync(dir, { recursive: true, force: true });
  return dir;
}
