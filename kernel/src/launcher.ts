/**
 * `moescope kernel` as Jupyter starts it: a small parent that runs the real kernel as its child with
 * fd 1 and fd 2 connected to two FIFOs, so output written below JavaScript (printf in the native
 * engine, CUDA logs, child processes with inherited stdio) reaches the notebook: Node cannot dup2
 * its own stdout, so the redirection happens at spawn. The kernel reads the FIFOs in its I/O worker
 * and forwards them as stream output of the running request; its own log goes to fd 3 (this
 * process's stderr, i.e. Jupyter's log).
 *
 * The parent only relays: the child runs in its own process group, so every SIGINT/SIGTERM/SIGHUP
 * (sent to this pid, as VS Code does, or to the group, as jupyter_client does) reaches it exactly
 * once, forwarded from here; the parent exits with the child's exit code. If the parent dies
 * (SIGKILL), the child sees its IPC channel close and exits. MOESCOPE_NATIVE_CAPTURE=0, or a platform without FIFOs, runs the kernel
 * in this process instead (without fd-level capture).
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const CHILD_ENV = "MOESCOPE_KERNEL_CHILD";

export async function launch(args: string[], runInProcess: () => Promise<number>): Promise<number> {
  if (process.env[CHILD_ENV] || process.platform === "win32" || process.env.MOESCOPE_NATIVE_CAPTURE === "0") return runInProcess();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-kernel-"));
  const fifos = [path.join(dir, "stdout"), path.join(dir, "stderr")];
  const made = spawnSync("mkfifo", ["-m", "600", ...fifos]);
  if (made.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`[moescope kernel] mkfifo failed (${made.stderr?.toString().trim()}); native output will not be captured\n`);
    return runInProcess();
  }
  // O_RDWR never blocks on a FIFO without a reader; the kernel opens the read ends itself.
  const fds = fifos.map((f) => fs.openSync(f, fs.constants.O_RDWR));
  const bin = path.join(__dirname, "..", "..", "..", "bin", "moescope.js");
  const child = spawn(process.execPath, [...process.execArgv, bin, "kernel", ...args], {
    stdio: ["inherit", fds[0], fds[1], 2, "ipc"],
    // Its own process group: a frontend's process-group SIGINT must reach the kernel once, through
    // this relay (two copies could land a V8 termination in the next cell).
    detached: true,
    env: { ...process.env, [CHILD_ENV]: "1", MOESCOPE_NATIVE_FIFOS: fifos.join(path.delimiter), MOESCOPE_LOG_FD: "3" },
  });
  fds.forEach((fd) => fs.closeSync(fd));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => child.kill(sig));
  watchFrontend(() => child.kill("SIGTERM"));
  return new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve(code ?? 128 + (signal ? os.constants.signals[signal] ?? 1 : 1));
    });
    child.on("error", (e) => {
      process.stderr.write(`[moescope kernel] could not start the kernel process: ${e.message}\n`);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve(1);
    });
  });
}

/**
 * Like ipykernel's ParentPoller: when the process that started us (JPY_PARENT_PID, set by
 * jupyter_client, else our parent) is gone, nobody can shut the kernel down, so it ends itself
 * rather than holding the ports and the model's memory.
 */
function watchFrontend(end: () => void): void {
  const jpy = Number(process.env.JPY_PARENT_PID);
  const startParent = process.ppid;
  const alive = (pid: number) => {
    try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
  };
  const timer = setInterval(() => {
    // Reparenting catches a parent that died but is not reaped yet (a zombie still answers kill 0).
    if (process.ppid !== startParent || (jpy > 1 && !alive(jpy))) {
      clearInterval(timer);
      end();
    }
  }, 1000);
  timer.unref();
}
