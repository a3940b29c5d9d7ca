// The language-neutral kernel over MemoryTransport with a scripted interpreter: message order,
// reply shapes (the fields the v5 schema requires), stop_on_error, comms and failure handling.
import { describe, expect, it } from "vitest";
import { KernelServer } from "../../kernel/src/protocol/kernel-server";
import { MemoryTransport } from "../../kernel/src/protocol/transport";
import type { ExecuteOutcome, Interpreter, OutputSink } from "../../kernel/src/interpreter-api";

class Scripted implements Interpreter {
  implementation = "test";
  implementationVersion = "0.0.1";
  languageInfo = { name: "typescript", version: "5", mimetype: "text/typescript", file_extension: ".ts", pygments_lexer: "typescript", codemirror_mode: "typescript" };
  banner = "b";
  helpLinks = [];
  sink!: OutputSink;
  interrupted = 0;
  targets = new Set<string>(["t"]);
  attach(s: OutputSink) { this.sink = s; }
  async doExecute(code: string): Promise<ExecuteOutcome> {
    if (code.startsWith("print ")) this.sink.stream("stdout", code.slice(6));
    if (code === "wait") await new Promise((r) => setTimeout(r, 20));
    if (code === "fail" || code === "wait") return { status: "error", ename: "Error", evalue: "x", traceback: ["Error: x"] };
    if (code === "crash") throw new Error("interpreter bug");
    return { status: "ok", result: { data: { "text/plain": code }, metadata: {} } };
  }
  doComplete() { return { matches: ["a"], cursor_start: 0, cursor_end: 1, metadata: {} }; }
  doInspect() { return { found: false, data: {}, metadata: {} }; }
  doIsComplete() { return { status: "complete" as const }; }
  interrupt() { this.interrupted++; }
  commOpen(_id: string, target: string) { if (target === "boom") throw new Error("handler failed"); return this.targets.has(target); }
  commMsg() { return true; }
  commClose() { return true; }
  commInfo() { return {}; }
  shutdown() {}
}

async function setup() {
  const t = new MemoryTransport();
  const interp = new Scripted();
  let shutdown: boolean | undefined;
  const server = new KernelServer(t, interp, { log: () => undefined, onShutdown: (r) => (shutdown = r) });
  await server.start();
  const settle = () => new Promise((r) => setTimeout(r, 60));
  return { t, interp, server, settle, shutdown: () => shutdown };
}
const types = (t: MemoryTransport, msgId: string) => t.sent.filter((s) => s.parent?.msg_id === msgId).map((s) => `${s.channel}:${s.msgType}`);

describe("KernelServer", () => {
  it("runs the execute cycle in order with counts, output and idle last", async () => {
    const { t, settle } = await setup();
    const m = t.request("execute_request", { code: "print hi" });
    await settle();
    expect(types(t, m.header.msg_id)).toEqual(["iopub:status", "iopub:execute_input", "iopub:stream", "iopub:execute_result", "shell:execute_reply", "iopub:status"]);
    const reply = t.sent.find((s) => s.msgType === "execute_reply")!;
    expect(reply.content).toMatchObject({ status: "ok", execution_count: 1, user_expressions: {}, payload: [] });
    expect(t.sent.at(-1)!.content).toEqual({ execution_state: "idle" });
  });

  it("reports errors with ename/evalue/traceback and does not count silent runs", async () => {
    const { t, server, settle } = await setup();
    t.request("execute_request", { code: "1", silent: true });
    const m = t.request("execute_request", { code: "fail" });
    await settle();
    expect(server.executionCount).toBe(1);
    expect(types(t, m.header.msg_id)).toContain("iopub:error");
    expect(t.sent.filter((s) => s.msgType === "execute_reply")[1].content).toMatchObject({ status: "error", ename: "Error", evalue: "x", traceback: ["Error: x"], execution_count: 1 });
    expect(t.sent.filter((s) => s.msgType === "execute_input")).toHaveLength(1);
  });

  it("aborts only the requests queued when an error happens, and only with stop_on_error", async () => {
    const { t, settle } = await setup();
    const a = t.request("execute_request", { code: "wait" });
    const b = t.request("execute_request", { code: "2" });
    await settle();
    const c = t.request("execute_request", { code: "3" });
    await settle();
    const status = (id: string) => t.sent.find((s) => s.msgType === "execute_reply" && s.parent?.msg_id === id)!.content.status;
    expect([status(a.header.msg_id), status(b.header.msg_id), status(c.header.msg_id)]).toEqual(["error", "aborted", "ok"]);
    const d = t.request("execute_request", { code: "wait", stop_on_error: false });
    const e = t.request("execute_request", { code: "5", stop_on_error: false });
    await settle();
    expect([status(d.header.msg_id), status(e.header.msg_id)]).toEqual(["error", "ok"]);
  });

  it("answers kernel_info with the fields the schema requires", async () => {
    const { t, settle } = await setup();
    t.request("kernel_info_request", {}, "control");
    await settle();
    const r = t.sent.find((s) => s.msgType === "kernel_info_reply")!;
    expect(r.channel).toBe("control");
    expect(r.content).toMatchObject({ status: "ok", protocol_version: "5.3", implementation: "test", language_info: { name: "typescript", file_extension: ".ts" } });
  });

  it("survives an interpreter that throws, answering with an error reply", async () => {
    const { t, settle } = await setup();
    const m = t.request("execute_request", { code: "crash" });
    await settle();
    expect(t.sent.find((s) => s.msgType === "execute_reply")!.content).toMatchObject({ status: "error", ename: "Error", evalue: "interpreter bug" });
    expect(types(t, m.header.msg_id).at(-1)).toBe("iopub:status");
  });

  it("ignores unknown message types but still reports busy/idle", async () => {
    const { t, settle } = await setup();
    const m = t.request("frobnicate_request", {});
    await settle();
    expect(types(t, m.header.msg_id)).toEqual(["iopub:status", "iopub:status"]);
  });

  it("closes comms to unknown targets and to targets whose handler throws", async () => {
    const { t, settle } = await setup();
    t.request("comm_open", { comm_id: "1", target_name: "t" });
    t.request("comm_open", { comm_id: "2", target_name: "nope" });
    t.request("comm_open", { comm_id: "3", target_name: "boom" });
    await settle();
    expect(t.sent.filter((s) => s.msgType === "comm_close").map((s) => s.content.comm_id)).toEqual(["2", "3"]);
  });

  it("answers interrupt, history and shutdown", async () => {
    const { t, interp, settle, shutdown } = await setup();
    t.request("interrupt_request", {}, "control");
    t.request("execute_request", { code: "7" });
    t.request("history_request", { hist_access_type: "tail", n: 5, output: true });
    t.request("shutdown_request", { restart: true }, "control");
    await settle();
    expect(interp.interrupted).toBe(1);
    expect(t.sent.find((s) => s.msgType === "history_reply")!.content.history).toEqual([[1, 1, ["7", "7"]]]);
    expect(t.sent.find((s) => s.msgType === "shutdown_reply")!.content).toEqual({ status: "ok", restart: true });
    expect(shutdown()).toBe(true);
  });
});
