/**
 * The I/O worker thread: owns every zeromq socket, so the heartbeat and interrupts keep working
 * while the main thread is blocked (a synchronous cell, a long JS loop).
 *
 * Contract with the main thread (see ./channel-messages.ts for the message shapes):
 * - every request received on shell/control is verified (constant-time HMAC) and parsed here;
 *   bad signatures, malformed frames and oversized messages are dropped and logged to stderr, never
 *   forwarded. Everything else is forwarded to the main thread, in arrival order.
 * - interrupt_request (on control, and on shell for older VS Code) is answered here and turned into
 *   SIGINT to this process: the main thread's SIGINT handler cancels async work, and V8's
 *   breakOnSigint watchdog stops a synchronous JS loop; it is the same path as interrupt_mode
 *   "signal", so both modes behave alike.
 * - one send in flight per socket (zeromq.js 6 throws EBUSY past 512 unawaited sends, losing
 *   messages), and stream text is batched on a short timer; any other message flushes the batch
 *   first, so order is kept and `idle` is always last.
 * - on "close" it flushes, closes the sockets and sets a shared flag, so the main thread can exit
 *   without killing a pending receive (zeromq aborts the process with code 134 otherwise).
 */
import { parentPort, workerData } from "worker_threads";
import { constants as fsc, openSync, unlinkSync, writeSync } from "fs";
import { Socket } from "net";
import { randomUUID } from "crypto";
import * as zmq from "zeromq";
import { decode, encode, Header, Message, Signer, WireError } from "./wire";
import type { ConnectionInfo, FromIo, ToIo } from "./channel-messages";

const PROTOCOL_VERSION = "5.3";
const STREAM_FLUSH_MS = 50;

const conn: ConnectionInfo = workerData.connection;
const exitFlag = new Int32Array(workerData.exitFlag as SharedArrayBuffer);
const maxMessageBytes: number = workerData.maxMessageBytes;
const logFd: number = workerData.logFd;
const nativeFifos: string[] | undefined = workerData.nativeFifos;
const signer = new Signer(conn.key, conn.signature_scheme || "hmac-sha256");
const session = randomUUID();
const port = parentPort!;

// Straight to fd 2: the worker's process.stderr is piped through the main thread, whose stderr
// is captured into the notebook; kernel diagnostics belong in the kernel's log.
function log(text: string): void {
  try { writeSync(logFd, `[moescope kernel io] ${text}\n`); } catch { /* log gone */ }
}

const url = (p: number) => `${conn.transport}://${conn.ip}${conn.transport === "ipc" ? "-" : ":"}${p}`;

const shell = new zmq.Router();
const control = new zmq.Router();
const stdin = new zmq.Router();
const iopub = new zmq.Publisher();
const hb = new zmq.Reply();
const sockets = { shell, control, stdin, iopub } as const;
type Channel = keyof typeof sockets;

// ---- sending: one in-flight send per socket ------------------------------------------------------
const queues = new Map<Channel, Promise<void>>();
function enqueue(channel: Channel, frames: Buffer[]): void {
  const sock = sockets[channel];
  const prev = queues.get(channel) ?? Promise.resolve();
  const next = prev.then(
    () => sock.send(frames),
  ).catch((e: Error) => log(`send on ${channel} failed: ${e.message}`));
  queues.set(channel, next);
}

function header(msgType: string): Header {
  return { msg_id: randomUUID(), session, username: "moescope", date: new Date().toISOString(), msg_type: msgType, version: PROTOCOL_VERSION };
}

function send(channel: Channel, msgType: string, content: object, parent: object, identities: Buffer[] = [], metadata: object = {}, buffers: Buffer[] = []): void {
  if (channel !== "iopub" || msgType !== "stream") flushStreams();
  const ids = channel === "iopub" ? [Buffer.from(msgType === "stream" ? `stream.${(content as any).name}` : msgType)] : identities;
  const msg: Message = { identities: ids, header: header(msgType), parent_header: parent as any, metadata: metadata as any, content: content as any, buffers };
  enqueue(channel, encode(msg, signer));
}

// ---- stream batching --------------------------------------------------------------------------
interface Pending { name: string; parent: any; text: string }
let pending: Pending[] = [];
let flushTimer: NodeJS.Timeout | undefined;
function addStream(name: string, text: string, parent: any): void {
  const last = pending[pending.length - 1];
  if (last && last.name === name && last.parent?.msg_id === parent?.msg_id) last.text += text;
  else pending.push({ name, parent, text });
  if (!flushTimer) flushTimer = setTimeout(flushStreams, STREAM_FLUSH_MS);
}
function flushStreams(): void {
  if (flushTimer) { clearTimeout(flushTimer); flushTimer = undefined; }
  const batch = pending;
  pending = [];
  for (const p of batch) {
    const msg: Message = { identities: [Buffer.from(`stream.${p.name}`)], header: header("stream"), parent_header: p.parent ?? {}, metadata: {}, content: { name: p.name, text: p.text }, buffers: [] };
    enqueue("iopub", encode(msg, signer));
  }
}

// ---- receiving ------------------------------------------------------------------------------
function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function interrupt(msg: Message, channel: Channel): void {
  send("iopub", "status", { execution_state: "busy" }, msg.header);
  process.kill(process.pid, "SIGINT");
  send(channel, "interrupt_reply", { status: "ok" }, msg.header, msg.identities);
  send("iopub", "status", { execution_state: "idle" }, msg.header);
}

function receive(channel: "shell" | "control", frames: Buffer[]): void {
  const size = frames.reduce((n, f) => n + f.length, 0);
  let msg: Message;
  try {
    msg = decode(frames, signer);
  } catch (e) {
    log(`dropped a ${channel} message: ${(e as Error).message}${e instanceof WireError ? "" : " (unexpected)"}`);
    return;
  }
  if (size > maxMessageBytes) {
    log(`dropped a ${channel} ${msg.header.msg_type} of ${size} bytes (limit ${maxMessageBytes})`);
    if (msg.header.msg_type.endsWith("_request")) {
      const reply = msg.header.msg_type.replace(/_request$/, "_reply");
      send(channel, reply, { status: "error", ename: "MessageTooLarge", evalue: `message of ${size} bytes exceeds the kernel's limit of ${maxMessageBytes}`, traceback: [] }, msg.header, msg.identities);
    }
    return;
  }
  if (msg.header.msg_type === "interrupt_request") return interrupt(msg, channel);
  const out: FromIo = { kind: "request", channel, msg };
  port.postMessage(out);
}

async function serve(channel: "shell" | "control", sock: zmq.Router): Promise<void> {
  try {
    for await (const frames of sock) receive(channel, frames as Buffer[]);
  } catch (e) {
    if (!sock.closed) log(`${channel} receive loop ended: ${(e as Error).message}`);
  }
}

async function heartbeat(): Promise<void> {
  try {
    for await (const frames of hb) await hb.send(frames as Buffer[]);
  } catch (e) {
    if (!hb.closed) log(`heartbeat ended: ${(e as Error).message}`);
  }
}

async function drainStdin(): Promise<void> {
  // input_request is not offered (allow_stdin replies are never awaited); replies are read and ignored.
  try { for await (const _ of stdin) { /* ignore */ } } catch { /* closed */ }
}

// ---- native output: fd 1/2 of this process are FIFOs (see launcher.ts); read them here, off the
// main thread, through libuv's pipe watcher (not the fs thread pool, which the engine's workers use).
let nativeParent: object = {};
const nativeReaders: Socket[] = [];
function readNativeOutput(): void {
  if (!nativeFifos) return;
  nativeFifos.forEach((fifo, i) => {
    const name = i === 0 ? "stdout" : "stderr";
    try {
      const fd = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK);
      unlinkSync(fifo);
      const sock = new Socket({ fd, readable: true, writable: false });
      sock.setEncoding("utf8");
      sock.on("data", (text: string) => addStream(name, text, nativeParent));
      sock.on("error", (e) => log(`native ${name} reader: ${e.message}`));
      nativeReaders.push(sock);
    } catch (e) {
      log(`cannot read native ${name} from ${fifo}: ${(e as Error).message}`);
    }
  });
}

async function close(): Promise<void> {
  for (const r of nativeReaders) r.destroy();
  flushStreams();
  await Promise.race([Promise.all(queues.values()), new Promise((r) => setTimeout(r, 1000))]);
  for (const s of [shell, control, stdin, iopub, hb]) { try { s.close(); } catch { /* already closed */ } }
  // Let the receive loops see their sockets closed before this thread may be torn down.
  await new Promise((r) => setTimeout(r, 20));
  Atomics.store(exitFlag, 0, 1);
  Atomics.notify(exitFlag, 0);
  port.close();
}

port.on("message", (m: ToIo) => {
  switch (m.kind) {
    case "send":
      send(m.channel, m.msgType, m.content, m.parent, (m.identities ?? []).map(toBuffer), m.metadata ?? {}, (m.buffers ?? []).map(toBuffer));
      break;
    case "stream":
      addStream(m.name, m.text, m.parent);
      break;
    case "context":
      nativeParent = m.parent;
      break;
    case "barrier":
      flushStreams();
      port.postMessage({ kind: "barrier", id: m.id } satisfies FromIo);
      break;
    case "close":
      void close();
      break;
  }
});

/** A restart reuses the ports; the previous kernel may still be releasing them for a moment. */
async function bindRetrying(sock: zmq.Socket, p: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await sock.bind(url(p));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 40) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function start(): Promise<void> {
  // A bounded linger: pending output to a vanished client must not hold the exit for long.
  for (const s of [shell, control, stdin, iopub, hb]) s.linger = 1000;
  await Promise.all([
    bindRetrying(shell, conn.shell_port),
    bindRetrying(control, conn.control_port),
    bindRetrying(stdin, conn.stdin_port),
    bindRetrying(iopub, conn.iopub_port),
    bindRetrying(hb, conn.hb_port),
  ]);
  readNativeOutput();
  port.postMessage({ kind: "ready" } satisfies FromIo);
  void serve("shell", shell);
  void serve("control", control);
  void heartbeat();
  void drainStdin();
}

start().catch((e) => {
  log(`could not bind the sockets: ${(e as Error).message}`);
  port.postMessage({ kind: "failed", message: (e as Error).message } satisfies FromIo);
});
