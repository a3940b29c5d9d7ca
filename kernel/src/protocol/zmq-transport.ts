/**
 * The real transport: starts the I/O worker (./io-worker.ts), which owns the zeromq sockets, and
 * relays between it and the kernel server over a MessagePort.
 */
import { Worker } from "worker_threads";
import * as path from "path";
import type { Message } from "./wire";
import type { Channel, ConnectionInfo, FromIo, ToIo } from "./channel-messages";
import type { RequestChannel, SendOptions, Transport } from "./transport";

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class ZmqTransport implements Transport {
  private worker?: Worker;
  private readonly exitFlag = new SharedArrayBuffer(4);
  private barriers = new Map<number, () => void>();
  private nextBarrier = 0;
  private closed = false;

  constructor(private readonly connection: ConnectionInfo, private readonly opts: { maxMessageBytes: number; logFd: number; nativeFifos?: string[] }) {}

  start(onRequest: (channel: RequestChannel, msg: Message) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = new Worker(path.join(__dirname, "io-worker.js"), {
        workerData: { connection: this.connection, exitFlag: this.exitFlag, ...this.opts },
        // The worker's own stdout would loop back through the kernel's capture; it logs to stderr only.
        stdout: false,
        stderr: false,
      });
      this.worker = w;
      w.on("message", (m: FromIo) => {
        switch (m.kind) {
          case "ready": resolve(); break;
          case "failed": reject(new Error(m.message)); break;
          case "barrier": this.barriers.get(m.id)?.(); this.barriers.delete(m.id); break;
          case "request": {
            const msg = m.msg;
            msg.identities = msg.identities.map(asBuffer);
            msg.buffers = msg.buffers.map(asBuffer);
            onRequest(m.channel, msg);
            break;
          }
        }
      });
      w.on("error", (e) => {
        process.stderr.write(`[moescope kernel] I/O worker failed: ${e.stack ?? e}\n`);
        reject(e);
      });
    });
  }

  private post(m: ToIo): void {
    if (!this.closed) this.worker?.postMessage(m);
  }

  send(channel: Channel, msgType: string, content: object, parent: Message | undefined, opts: SendOptions = {}): void {
    this.post({ kind: "send", channel, msgType, content, parent: parent?.header ?? {}, identities: parent?.identities, metadata: opts.metadata, buffers: opts.buffers });
  }

  outputParent(parent: Message | undefined): void {
    this.post({ kind: "context", parent: parent?.header ?? {} });
  }

  stream(name: "stdout" | "stderr", text: string, parent: Message | undefined): void {
    this.post({ kind: "stream", name, text, parent: parent?.header ?? {} });
  }

  barrier(): Promise<void> {
    const id = ++this.nextBarrier;
    return new Promise((resolve) => {
      this.barriers.set(id, resolve);
      this.post({ kind: "barrier", id });
    });
  }

  /** Flushes, closes the sockets and waits for the worker to end: the clean way out. */
  async closeAsync(): Promise<void> {
    const w = this.worker;
    if (this.closed || !w) return;
    const ended = new Promise<void>((r) => w.once("exit", () => r()));
    this.post({ kind: "close" });
    this.closed = true;
    await Promise.race([ended, new Promise((r) => setTimeout(r, 3000))]);
  }

  close(): void {
    if (this.closed || !this.worker) return;
    this.post({ kind: "close" });
    this.closed = true;
    // process.exit from a cell: the loop cannot turn, so block until the worker has flushed and
    // closed its sockets (exiting with a receive pending aborts the process in zeromq.js 6, and
    // unflushed output would be lost), then give its last callbacks a moment.
    const flag = new Int32Array(this.exitFlag);
    Atomics.wait(flag, 0, 0, 2000);
    Atomics.wait(flag, 0, 1, 50);
  }
}
