/**
 * A Jupyter client for one moescope kernel, in TypeScript, with no Python: starts
 * `bin/moescope.js kernel -f CONNECTION_FILE` on free 127.0.0.1 ports, connects shell and control
 * (DEALER) and iopub (SUB) over zeromq, and runs code with `execute(code)`, which resolves once the
 * kernel is idle again with every iopub message of that request, in arrival order, and the reply.
 *
 * Messages are signed and framed by the kernel's own wire module, so client and kernel can only
 * disagree about the protocol where the Jupyter spec does. `stop()` asks for shutdown politely
 * and kills the process group when the kernel does not go.
 */
import { spawn, ChildProcess } from "child_process";
import { randomBytes, randomUUID } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as zmq from "zeromq";
import { decode, encode, Message, Signer } from "../protocol/wire";
import type { ConnectionInfo } from "../protocol/channel-messages";

export interface ExecuteResult {
  reply: Message;
  /** iopub messages whose parent is this request, status messages excluded. */
  iopub: Message[];
  /** The cell ran past its time limit and was interrupted (the reply then reports the interrupt). */
  interrupted: boolean;
}

export interface KernelClientOptions {
  /** Working directory of the kernel (Jupyter uses the notebook's folder, so relative paths match). */
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** How long the kernel may take to answer its first kernel_info_request. */
  startTimeoutMs?: number;
}

const ROOT = path.resolve(__dirname, "..", "..", "..", "..");

/** Ports the OS says are free now; the kernel binds them a moment later (the race Jupyter accepts too). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((res, rej) => {
      const s = net.createServer();
      s.once("error", rej);
      s.listen(0, "127.0.0.1", () => res(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export class KernelClient {
  private proc?: ChildProcess;
  private shell?: zmq.Dealer;
  private control?: zmq.Dealer;
  private iopub?: zmq.Subscriber;
  private signer!: Signer;
  private readonly session = randomUUID();
  private connFile = "";
  private stderrTail = "";
  private exited: { code: number | null; signal: string | null } | undefined;
  /** Waiters keyed by the request's msg_id; one reader loop per socket feeds them. */
  private iopubWaiters = new Map<string, (m: Message) => void>();
  private replyWaiters = new Map<string, (m: Message) => void>();
  languageInfo: Record<string, unknown> = {};

  constructor(private readonly opts: KernelClientOptions) {}

  async start(): Promise<void> {
    const [shell, control, stdin, iopub, hb] = await freePorts(5);
    const info: ConnectionInfo = {
      transport: "tcp", ip: "127.0.0.1", shell_port: shell, control_port: control, stdin_port: stdin,
      iopub_port: iopub, hb_port: hb, key: randomBytes(16).toString("hex"), signature_scheme: "hmac-sha256",
    };
    this.signer = new Signer(info.key, info.signature_scheme);
    this.connFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "moescope-run-")), "kernel.json");
    fs.writeFileSync(this.connFile, JSON.stringify(info), { mode: 0o600 });

    // detached: the kernel and its launcher child form one process group we can end together.
    this.proc = spawn(process.execPath, [path.join(ROOT, "bin", "moescope.js"), "kernel", "-f", this.connFile], {
      cwd: this.opts.cwd,
      env: { ...process.env, ...this.opts.env, JPY_PARENT_PID: String(process.pid) },
      stdio: ["ignore", "ignore", "pipe"],
      detached: true,
    });
    this.proc.stderr!.on("data", (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-4000); });
    this.proc.on("exit", (code, signal) => {
      this.exited = { code, signal };
      const err = new Error(`kernel exited (code ${code}, signal ${signal})${this.stderrTail ? ": " + this.stderrTail.trim() : ""}`);
      for (const w of [...this.iopubWaiters.values(), ...this.replyWaiters.values()]) (w as any)(err);
    });

    const url = (p: number) => `tcp://127.0.0.1:${p}`;
    this.shell = new zmq.Dealer({ routingId: this.session + "-shell", linger: 0 });
    this.control = new zmq.Dealer({ routingId: this.session + "-control", linger: 0 });
    this.iopub = new zmq.Subscriber({ linger: 0 });
    this.shell.connect(url(shell));
    this.control.connect(url(control));
    this.iopub.connect(url(iopub));
    this.iopub.subscribe();
    void this.readLoop(this.shell, this.replyWaiters);
    void this.readLoop(this.control, this.replyWaiters);
    void this.readLoop(this.iopub, this.iopubWaiters);

    // The SUB socket misses whatever is published before its subscription reaches the kernel, so
    // repeat kernel_info_request until its busy/idle arrives on iopub: from then on nothing is lost.
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (this.exited) throw new Error(`kernel exited while starting (code ${this.exited.code})${this.stderrTail ? ": " + this.stderrTail.trim() : ""}`);
      if (Date.now() > deadline) throw new Error(`kernel did not answer within ${this.opts.startTimeoutMs ?? 60_000} ms`);
      const msg = this.message("kernel_info_request", {});
      const seen = new Promise<boolean>((res) => {
        const t = setTimeout(() => { this.iopubWaiters.delete(msg.header.msg_id); res(false); }, 500);
        this.iopubWaiters.set(msg.header.msg_id, () => { clearTimeout(t); this.iopubWaiters.delete(msg.header.msg_id); res(true); });
      });
      const reply = this.request(this.shell, msg);
      if (await seen) {
        const r = await reply;
        this.languageInfo = (r.content.language_info as Record<string, unknown>) ?? {};
        return;
      }
      reply.catch(() => undefined);
      this.replyWaiters.delete(msg.header.msg_id);
    }
  }

  private message(msgType: string, content: Record<string, unknown>): Message {
    return {
      identities: [],
      header: { msg_id: randomUUID(), session: this.session, username: "moescope-runner", date: new Date().toISOString(), msg_type: msgType, version: "5.3" },
      parent_header: {}, metadata: {}, content, buffers: [],
    };
  }

  private async readLoop(sock: zmq.Dealer | zmq.Subscriber, waiters: Map<string, (m: Message) => void>): Promise<void> {
    try {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = decode(frames as Buffer[], this.signer);
        } catch {
          continue; // a frame we cannot verify is not ours to act on
        }
        const parent = msg.parent_header.msg_id;
        if (typeof parent === "string") waiters.get(parent)?.(msg);
      }
    } catch {
      // socket closed by stop()
    }
  }

  private request(sock: zmq.Dealer, msg: Message): Promise<Message> {
    const id = msg.header.msg_id;
    const p = new Promise<Message>((res, rej) => {
      this.replyWaiters.set(id, (m: Message | Error) => {
        this.replyWaiters.delete(id);
        m instanceof Error ? rej(m) : res(m);
      });
    });
    void sock.send(encode(msg, this.signer));
    return p;
  }

  /** Runs code; resolves when both the reply and iopub's idle for it have arrived. */
  async execute(code: string, opts: { timeoutMs?: number } = {}): Promise<ExecuteResult> {
    const msg = this.message("execute_request", { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true });
    const id = msg.header.msg_id;
    const iopub: Message[] = [];
    const idle = new Promise<void>((res, rej) => {
      this.iopubWaiters.set(id, (m: Message | Error) => {
        if (m instanceof Error) return rej(m);
        if (m.header.msg_type === "status") {
          if (m.content.execution_state === "idle") { this.iopubWaiters.delete(id); res(); }
          return;
        }
        iopub.push(m);
      });
    });
    const reply = this.request(this.shell!, msg);
    const done = Promise.all([reply, idle]);
    let timer: NodeJS.Timeout | undefined;
    let interrupted = false;
    const limit = opts.timeoutMs ?? 0;
    // Past the limit: SIGINT (the kernel's interrupt_mode is "signal"), then give the kernel a few
    // seconds to end the cell with KeyboardInterrupt, so the notebook records the kernel's own error.
    const timeout = new Promise<never>((_, rej) => {
      if (limit > 0) timer = setTimeout(() => {
        interrupted = true;
        try { this.proc?.kill("SIGINT"); } catch { /* gone already */ }
        timer = setTimeout(() => rej(new Error(`cell did not finish within ${limit / 1000} s and did not stop when interrupted`)), 5000);
      }, limit);
    });
    try {
      const [r] = await Promise.race([done, timeout]);
      return { reply: r, iopub, interrupted };
    } finally {
      if (timer) clearTimeout(timer);
      this.iopubWaiters.delete(id);
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && !this.exited && this.control) {
      const gone = new Promise<void>((res) => proc.once("exit", () => res()));
      const reply = this.request(this.control, this.message("shutdown_request", { restart: false })).catch(() => undefined);
      const waited = await Promise.race([Promise.all([reply, gone]).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!waited && !this.exited) {
        try { process.kill(-proc.pid!, "SIGKILL"); } catch { /* already gone */ }
      }
    }
    for (const s of [this.shell, this.control, this.iopub]) s?.close();
    if (this.connFile) fs.rmSync(path.dirname(this.connFile), { recursive: true, force: true });
  }
}
