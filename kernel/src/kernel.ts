/**
 * The kernel process: wires the protocol layer (ZmqTransport + KernelServer) to the TypeScript
 * interpreter, and owns the process-wide concerns neither should know about: SIGINT, errors that
 * escape a cell (reported to the notebook, never fatal), and exit (sockets closed first).
 */
import * as fs from "fs";
import { KernelServer } from "./protocol/kernel-server";
import { ZmqTransport } from "./protocol/zmq-transport";
import type { ConnectionInfo } from "./protocol/channel-messages";
import { TsInterpreter } from "./interpreter/ts-interpreter";
import { inspect } from "util";

const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export function kernelLog(text: string): void {
  try { fs.writeSync(2, `[moescope kernel] ${text}\n`); } catch { /* stderr gone: nothing to do */ }
}

export async function runKernel(connectionFile: string): Promise<number> {
  const conn = JSON.parse(fs.readFileSync(connectionFile, "utf8")) as ConnectionInfo;
  const maxBytes = Number(process.env.MOESCOPE_MAX_MESSAGE_BYTES) || DEFAULT_MAX_MESSAGE_BYTES;
  const transport = new ZmqTransport(conn, maxBytes);
  const interp = new TsInterpreter();
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

  await server.start();
  kernelLog(`started (pid ${process.pid}, cwd ${process.cwd()})`);
  // Never resolves: the process ends through shutdown_request, a signal, or process.exit in a cell.
  return new Promise<number>(() => undefined);
}
