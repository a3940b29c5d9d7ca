/**
 * The language-neutral kernel: a handler table keyed by msg_type (ipykernel's `shell_handlers`),
 * busy/idle around every request (idle in `finally`, so it is always last), and the bookkeeping
 * around an `Interpreter` (xeus's execute_request → execute_request_impl split): execution counts,
 * execute_input, execute_result/error, replies, history, stop_on_error, comms, shutdown.
 *
 * Ordering: shell requests run one at a time, in arrival order (so status never flips to idle in the
 * middle of an execution); control requests run at once, beside a running cell. A handler that
 * throws is logged and answered with an error reply; it never ends the process.
 */
import type { Interpreter, OutputSink, CommData, Bundle } from "../interpreter-api";
import type { Message } from "./wire";
import type { RequestChannel, Transport } from "./transport";

export const PROTOCOL_VERSION = "5.3";

type Handler = (msg: Message, channel: RequestChannel) => Promise<void> | void;

export interface KernelServerOptions {
  /** Called after a shutdown_request was answered; the process owner exits. */
  onShutdown?: (restart: boolean) => void;
  log?: (text: string) => void;
}

export class KernelServer {
  executionCount = 0;
  private readonly queue: Message[] = [];
  private pumping = false;
  private readonly aborting = new Set<Message>();
  private readonly history: { line: number; input: string; output: string | null }[] = [];
  /** The request that output is attributed to; kept after it ends, for late output (timers). */
  private outputParent: Message | undefined;
  private readonly handlers: Record<string, Handler>;
  private readonly log: (text: string) => void;

  constructor(private readonly transport: Transport, private readonly interp: Interpreter, private readonly opts: KernelServerOptions = {}) {
    this.log = opts.log ?? ((t) => process.stderr.write(`[moescope kernel] ${t}\n`));
    this.handlers = {
      execute_request: (m) => this.executeRequest(m),
      kernel_info_request: (m, ch) => this.reply(ch, m, "kernel_info_reply", this.kernelInfo()),
      complete_request: (m, ch) => this.reply(ch, m, "complete_reply", { status: "ok", ...this.interp.doComplete(String(m.content.code ?? ""), Number(m.content.cursor_pos ?? 0)) }),
      inspect_request: (m, ch) => this.reply(ch, m, "inspect_reply", { status: "ok", ...this.interp.doInspect(String(m.content.code ?? ""), Number(m.content.cursor_pos ?? 0), Number(m.content.detail_level ?? 0)) }),
      is_complete_request: (m, ch) => this.reply(ch, m, "is_complete_reply", this.interp.doIsComplete(String(m.content.code ?? ""))),
      history_request: (m, ch) => this.reply(ch, m, "history_reply", { status: "ok", history: this.historyFor(m.content) }),
      comm_info_request: (m, ch) => this.reply(ch, m, "comm_info_reply", { status: "ok", comms: this.interp.commInfo(m.content.target_name) }),
      comm_open: (m) => this.commOpen(m),
      comm_msg: (m) => { if (!this.interp.commMsg(String(m.content.comm_id), this.commData(m))) this.log(`comm_msg for unknown comm ${m.content.comm_id}`); },
      comm_close: (m) => { this.interp.commClose(String(m.content.comm_id), this.commData(m)); },
      interrupt_request: (m, ch) => { this.interp.interrupt(); this.reply(ch, m, "interrupt_reply", { status: "ok" }); },
      shutdown_request: (m, ch) => this.shutdownRequest(m, ch),
    };
  }

  async start(): Promise<void> {
    this.interp.attach(this.sink());
    await this.transport.start((channel, msg) => this.onRequest(channel, msg));
  }

  private onRequest(channel: RequestChannel, msg: Message): void {
    if (channel === "control") {
      void this.dispatch(channel, msg);
      return;
    }
    this.queue.push(msg);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const msg = this.queue.shift()!;
        if (this.aborting.delete(msg)) this.abortReply(msg);
        else await this.dispatch("shell", msg);
        // A macrotask between requests lets a SIGINT that ended the last cell be handled before the next starts.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.pumping = false;
    }
  }

  private async dispatch(channel: RequestChannel, msg: Message): Promise<void> {
    const type = msg.header.msg_type;
    if (channel === "shell") {
      this.outputParent = msg;
      this.transport.outputParent(msg);
    }
    this.transport.send("iopub", "status", { execution_state: "busy" }, msg);
    try {
      const h = Object.prototype.hasOwnProperty.call(this.handlers, type) ? this.handlers[type] : undefined;
      if (!h) this.log(`unknown message type ${JSON.stringify(type)} on ${channel}; ignored`);
      else await h(msg, channel);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.log(`exception in ${type} handler: ${err.stack ?? err.message}`);
      if (type.endsWith("_request")) {
        this.reply(channel, msg, type.replace(/_request$/, "_reply"), { status: "error", ename: err.name, evalue: err.message, traceback: (err.stack ?? "").split("\n") });
      }
    } finally {
      this.transport.send("iopub", "status", { execution_state: "idle" }, msg);
    }
  }

  private reply(channel: RequestChannel, parent: Message, msgType: string, content: object, metadata: Record<string, unknown> = {}): void {
    this.transport.send(channel, msgType, content, parent, { metadata });
  }

  private abortReply(msg: Message): void {
    this.transport.send("iopub", "status", { execution_state: "busy" }, msg);
    this.reply("shell", msg, msg.header.msg_type.replace(/_request$/, "_reply"), { status: "aborted" }, { status: "aborted" });
    this.transport.send("iopub", "status", { execution_state: "idle" }, msg);
  }

  kernelInfo(): object {
    const i = this.interp;
    return {
      status: "ok",
      protocol_version: PROTOCOL_VERSION,
      implementation: i.implementation,
      implementation_version: i.implementationVersion,
      language_info: i.languageInfo,
      banner: i.banner,
      help_links: i.helpLinks,
      debugger: false,
    };
  }

  private async executeRequest(msg: Message): Promise<void> {
    const c = msg.content;
    const code = String(c.code ?? "");
    const silent = c.silent === true;
    const storeHistory = c.store_history === undefined ? !silent : c.store_history === true && !silent;
    const stopOnError = c.stop_on_error === undefined ? true : c.stop_on_error === true;
    if (storeHistory) this.executionCount++;
    const count = this.executionCount;
    if (!silent) this.transport.send("iopub", "execute_input", { code, execution_count: count }, msg);
    const entry = { line: count, input: code, output: null as string | null };
    if (storeHistory) this.history.push(entry);

    const outcome = await this.interp.doExecute(code, { silent, storeHistory, executionCount: count });
    if (outcome.status === "ok") {
      if (outcome.result) entry.output = String(outcome.result.data["text/plain"] ?? "");
      if (outcome.result && !silent) {
        this.transport.send("iopub", "execute_result", { execution_count: count, data: outcome.result.data, metadata: outcome.result.metadata }, msg);
      }
      this.reply("shell", msg, "execute_reply", { status: "ok", execution_count: count, user_expressions: {}, payload: [] }, { status: "ok" });
      return;
    }
    const { ename, evalue, traceback } = outcome;
    if (!silent) this.transport.send("iopub", "error", { ename, evalue, traceback }, msg);
    this.reply("shell", msg, "execute_reply", { status: "error", execution_count: count, ename, evalue, traceback, user_expressions: {}, payload: [] }, { status: "error" });
    if (stopOnError) {
      // Abort what the client had already sent when the error happened (ipykernel with
      // stop_on_error_timeout=0): everything the I/O worker received before this barrier.
      await this.transport.barrier();
      for (const m of this.queue) if (m.header.msg_type === "execute_request") this.aborting.add(m);
    }
  }

  /** history_reply entries: [session, line, input] or, with `output`, [session, line, [input, output]]. */
  private historyFor(c: Record<string, any>): unknown[] {
    const h = this.history;
    let found: typeof h;
    switch (c.hist_access_type) {
      case "tail": found = h.slice(-Math.max(0, Number(c.n ?? 10))); break;
      case "range": {
        const start = Number(c.start ?? 0), stop = c.stop == null ? Infinity : Number(c.stop);
        found = h.filter((e) => e.line >= start && e.line < stop);
        break;
      }
      case "search": {
        const glob = String(c.pattern ?? "*").replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
        const re = new RegExp(`^${glob}$`, "s");
        found = h.filter((e) => re.test(e.input));
        if (c.unique) found = found.filter((e, i) => found.findIndex((f) => f.input === e.input) === i);
        if (c.n) found = found.slice(-Number(c.n));
        break;
      }
      default: found = [];
    }
    // Session 1: this kernel keeps no history across restarts.
    return found.map((e) => [1, e.line, c.output ? [e.input, e.output] : e.input]);
  }

  private commData(m: Message): CommData {
    return { data: m.content.data ?? {}, metadata: m.metadata ?? {}, buffers: m.buffers };
  }

  private commOpen(m: Message): void {
    const id = String(m.content.comm_id), target = String(m.content.target_name);
    let ok = false;
    try {
      ok = this.interp.commOpen(id, target, this.commData(m));
      if (!ok) this.log(`comm_open for unknown target ${JSON.stringify(target)}; closing it`);
    } catch (e) {
      this.log(`comm_open handler for ${JSON.stringify(target)} failed; closing it: ${(e as Error).stack ?? e}`);
    }
    if (!ok) this.transport.send("iopub", "comm_close", { comm_id: id, data: {} }, m);
  }

  private shutdownRequest(m: Message, channel: RequestChannel): void {
    const restart = m.content.restart === true;
    this.reply(channel, m, "shutdown_reply", { status: "ok", restart });
    // After idle is queued (dispatch's finally), let the owner close the transport and exit.
    setImmediate(() => {
      try { this.interp.shutdown(); } catch (e) { this.log(`interpreter shutdown failed: ${(e as Error).message}`); }
      this.opts.onShutdown?.(restart);
    });
  }

  /** The output sink handed to the interpreter: routes to the request being handled (or the last one). */
  private sink(): OutputSink {
    const t = this.transport;
    const parent = () => this.outputParent;
    const comm = (m: CommData) => ({ metadata: m.metadata, buffers: m.buffers });
    return {
      stream: (name, text) => t.stream(name, text, parent()),
      display: (b: Bundle, displayId, update) =>
        t.send("iopub", update ? "update_display_data" : "display_data", { data: b.data, metadata: b.metadata, transient: { display_id: displayId } }, parent()),
      clearOutput: (wait) => t.send("iopub", "clear_output", { wait }, parent()),
      commOpen: (id, target, m) => t.send("iopub", "comm_open", { comm_id: id, target_name: target, data: m.data }, parent(), comm(m)),
      commMsg: (id, m) => t.send("iopub", "comm_msg", { comm_id: id, data: m.data }, parent(), comm(m)),
      commClose: (id, m) => t.send("iopub", "comm_close", { comm_id: id, data: m.data }, parent(), comm(m)),
    };
  }
}
