/**
 * The kernel process: wires the protocol layer (ZmqTransport + KernelServer) to the TypeScript
 * interpreter, and owns the process-wide concerns neither should know about: SIGINT, errors that
 * escape a cell (reported to the notebook, never fatal), and exit (sockets closed first).
 */
import * as fs from "fs";
import * as path from "path";
import { KernelServer } from "./protocol/kernel-server";
import { ZmqTransport } from "./protocol/zmq-transport";
import type { ConnectionInfo } from "./protocol/channel-messages";
import { TsInterpreter } from "./interpreter/ts-interpreter";
import { inspect } from "util";

const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** The kernel's own log: Jupyter's log, never the notebook (fd 3 when the launcher redirected fd 2). */
export const LOG_FD = Number(process.env.MOESCOPE_LOG_FD) || 2;
export function kernelLog(text: string): void {
  try { fs.writeSync(LOG_FD, `[moescope kernel] ${text}\n`); } catch { /* log gone: nothing to do */ }
}

export async function runKernel(connectionFile: string): Promise<number> {
  const conn = JSON.parse(fs.readFileSync(connectionFile, "utf8")) as ConnectionInfo;
  const maxBytes = Number(process.env.MOESCOPE_MAX_MESSAGE_BYTES) || DEFAULT_MAX_MESSAGE_BYTES;
  const nativeFifos = process.env.MOESCOPE_NATIVE_FIFOS?.split(path.delimiter);
  const transport = new ZmqTransport(conn, { maxMessageBytes: maxBytes, logFd: LOG_FD, nativeFifos });
  const interp = new TsInterpreter(kernelLog);
  const server = new KernelServer(transport, interp, {
    log: kernelLog,
    onShutdown: () => void transport.closeAsync().then(() => process.exit(0)),
  });

  // Jupyter's interrupt_mode "signal", and the I/O worker's answer to interrupt_request, both land here.
  process.on("SIGINT", () => interp.interrupt());
  // Errors that escape a cell (a timer, a promise nobody awaited) go to the notebook as stderr;
  // the kernel, and the model it holds, keep running.
  process.on("unhandledRejection", (reason) => {
    process.stderr.write(`Unhandled promise rejection: ${reason instanceof Error ? reason.stack : inspect(reason)}\n`);
  });
  process.on("uncaughtException", (err) => {
    process.stderr.write(`Uncaught exception: ${err?.stack ?? inspect(err)}\n`);
  });
  process.on("exit", () => transport.close());

  // The launcher is our parent: when it is gone (killed by a frontend), so is this kernel.
  if (process.channel) {
    process.on("disconnect", () => process.exit(1));
    process.channel.unref();
  }

  await server.start();
  kernelLog(`started (pid ${process.pid}, cwd ${process.cwd()})`);
  // Never resolves: the process ends through shutdown_request, a signal, or process.exit in a cell.
  return new Promise<number>(() => undefined);
}
