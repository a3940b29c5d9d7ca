/**
 * TypeScript cells: type-checked and compiled by tslab's converter (pinned tslab 1.0.22, reused as a
 * library through its deep import `tslab/dist/converter`), run here with `vm.runInThisContext`.
 * The run step follows tslab's executor (Apache-2.0, yunabe/tslab src/executor.ts): cells share a
 * Proxy'd `exports` object so variables persist, and a cell with top-level await is wrapped in an
 * async function. Differences from tslab: the last value becomes an execute_result bundle through
 * the display protocol, errors become {ename, evalue, traceback}, and each cell gets an
 * AbortController that is the engine's ambient cancel signal, so an interrupt cancels native work.
 *
 * Interrupts: `interrupt()` (from SIGINT, which the I/O worker also raises for interrupt_request)
 * aborts the cell's signal and rejects the pending await at once. A synchronous JS loop is stopped
 * by V8's breakOnSigint watchdog; synchronous native code cannot be stopped (the engine has none).
 */
import * as vm from "vm";
import * as path from "path";
import * as fs from "fs";
import { inspect } from "util";
import type { Bundle, CommData, ErrorOutcome, ExecuteOutcome, Interpreter, LanguageInfo, OutputSink } from "../interpreter-api";
import { cellRequire, forwardTypeResolution, packageRoot } from "./module-paths";
import { captureConsole } from "./console-capture";
import { errorOutcome, KeyboardInterrupt } from "./errors";

// Deep imports of a pinned version (kernel-notes §1.7): typed loosely on purpose.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const tsForTslab = require("@tslab/typescript-for-tslab");
// The converter module sets ts.sys.useCaseSensitiveFileNames at load; forward moescope before any converter exists.

// Two copies of one Ctrl-C (a process-group SIGINT plus the launcher's forwarded one) land within a
// few milliseconds. A client that saw the next cell start and interrupts it takes far longer (a
// round trip; measured 97-110 ms under load), so a longer window dropped real interrupts and left
// `while (true) {}` running.
const DUPLICATE_SIGINT_MS = 30;

interface Running {
  ctrl: AbortController;
  reject: (e: Error) => void;
  interrupted: boolean;
}

export class TsInterpreter implements Interpreter {
  readonly implementation = "moescope";
  readonly implementationVersion: string;
  readonly languageInfo: LanguageInfo;
  readonly banner: string;
  readonly helpLinks = [
    { text: "moescope", url: "https://www.npmjs.com/package/moescope" },
    { text: "TypeScript handbook", url: "https://www.typescriptlang.org/docs/handbook/intro.html" },
    { text: "Node.js API", url: "https://nodejs.org/api/" },
  ];

  private readonly root = packageRoot();
  private readonly cwd = process.cwd();
  private converter: any;
  private tslabConverter: any;
  private printQuickInfo: (info: unknown) => string;
  private readonly exports: Record<string, unknown>;
  private prevDecl = "";
  private running: Running | undefined;
  private lastInterruptAt = 0;
  private sink!: OutputSink;
  private readonly display = require(path.join(this.root, "dist/engine/src/display.js"));
  private readonly cancel = require(path.join(this.root, "dist/engine/src/cancel.js"));

  constructor(private readonly log: (text: string) => void = () => undefined) {
    const pkg = JSON.parse(fs.readFileSync(path.join(this.root, "package.json"), "utf8"));
    this.implementationVersion = pkg.version;
    this.languageInfo = {
      name: "typescript",
      version: tsForTslab.version,
      mimetype: "text/typescript",
      file_extension: ".ts",
      pygments_lexer: "typescript",
      codemirror_mode: { name: "javascript", typescript: true },
      nbconvert_exporter: "script",
    };
    this.banner = `moescope ${pkg.version}: TypeScript ${tsForTslab.version} on Node ${process.version}, with the moescope engine (import { Model, display } from "moescope")`;
    forwardTypeResolution(tsForTslab.sys, this.cwd, this.root);
    this.tslabConverter = require("tslab/dist/converter");
    this.printQuickInfo = require("tslab/dist/inspect").printQuickInfo;
    this.converter = this.tslabConverter.createConverter({});
    const target: Record<string, unknown> = {};
    // TypeScript emits named imports as defineProperty getters; store values so later cells can reassign.
    this.exports = new Proxy(target, {
      defineProperty: (_t, prop, attrs) => {
        if (prop === "__esModule") return true;
        (target as any)[prop] = attrs.get ? attrs.get() : attrs.value;
        return true;
      },
    });
    (globalThis as any).__moescope_cell__ = { exports: this.exports, require: cellRequire(this.cwd, this.root) };
  }

  attach(sink: OutputSink): void {
    this.sink = sink;
    captureConsole((name, text) => sink.stream(name, text));
    this.display.setFrontend({
      display: (b: { data: Record<string, unknown>; metadata?: Record<string, unknown> }, o: { displayId: string; update: boolean }) =>
        sink.display({ data: b.data, metadata: b.metadata ?? {} }, o.displayId, o.update),
      clearOutput: (wait: boolean) => sink.clearOutput(wait),
      commOpen: (id: string, target: string, data: unknown, metadata: Record<string, unknown>, buffers: Uint8Array[]) => sink.commOpen(id, target, { data, metadata, buffers }),
      commMsg: (id: string, data: unknown, metadata: Record<string, unknown>, buffers: Uint8Array[]) => sink.commMsg(id, { data, metadata, buffers }),
      commClose: (id: string, data: unknown, metadata: Record<string, unknown>, buffers: Uint8Array[]) => sink.commClose(id, { data, metadata, buffers }),
    });
  }

  async doExecute(code: string, opts: { silent: boolean; executionCount: number }): Promise<ExecuteOutcome> {
    const conv = this.convert(expandShorthandProperties(code));
    if (conv.diagnostics.length > 0) return this.diagnosticsOutcome(conv.diagnostics);
    if (!conv.output) {
      this.prevDecl = conv.declOutput || "";
      return { status: "ok" };
    }
    const ctrl = new AbortController();
    let reject!: (e: Error) => void;
    const interruptPromise = new Promise<never>((_, rej) => (reject = rej));
    interruptPromise.catch(() => undefined);
    const running: Running = { ctrl, reject, interrupted: false };
    this.running = running;
    this.cancel.setAmbientSignal(ctrl.signal);
    try {
      // A SIGINT that came while the cell compiled (the thread was busy) is still queued in libuv,
      // and breakOnSigint would never see it: `while (true) {}` would run on. Signals are read in
      // the poll phase; we are in a poll callback, so the first check-phase turn is still before
      // it and the second is after it.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (running.interrupted) throw new KeyboardInterrupt();
      const prefix = conv.hasToplevelAwait ? "(async function(exports, require) { " : "(function(exports, require) { ";
      const wrapped = `${prefix}${conv.output}\n})(__moescope_cell__.exports, __moescope_cell__.require)`;
      const ret = vm.runInThisContext(wrapped, { filename: `cell[${opts.executionCount}]`, breakOnSigint: true });
      if (conv.hasToplevelAwait) await Promise.race([ret, interruptPromise]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException)?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") this.lastInterruptAt = Date.now();
      if (running.interrupted || (e as NodeJS.ErrnoException)?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") return errorOutcome(new KeyboardInterrupt());
      return errorOutcome(e);
    } finally {
      this.running = undefined;
      if (this.cancel.ambientSignal() === ctrl.signal) this.cancel.setAmbientSignal(undefined);
    }
    this.prevDecl = conv.declOutput || "";
    const v = conv.lastExpressionVar;
    if (!v || !(v in this.exports)) return { status: "ok" };
    const value = this.exports[v];
    delete this.exports[v];
    if (value === undefined || opts.silent) return { status: "ok" };
    try {
      // A string result reads as a value (quoted, as Node's REPL prints it); display("s") shows it raw.
      const b = typeof value === "string" ? { data: { "text/plain": inspect(value) } } : this.display.toMimeBundle(value);
      return { status: "ok", result: { data: b.data, metadata: b.metadata ?? {} } as Bundle };
    } catch (e) {
      return errorOutcome(e);
    }
  }

  /**
   * tslab's converter keeps a pending-rebuild timer across calls; if anything ever throws inside it
   * (a late V8 termination from an interrupt, a compiler bug), every later call throws too. Build a
   * fresh one and retry once: declarations carry over, since they live in prevDecl.
   */
  private convert(code: string): any {
    try {
      return this.converter.convert(this.prevDecl, code);
    } catch (e) {
      this.log(`the TypeScript converter failed (${(e as Error).message}); starting a fresh one`);
      try { this.converter.close(); } catch { /* it is being replaced */ }
      this.converter = this.tslabConverter.createConverter({});
      return this.converter.convert(this.prevDecl, code);
    }
  }

  private diagnosticsOutcome(diags: { start: { line: number; character: number }; messageText: string; fileName?: string }[]): ErrorOutcome {
    const lines = diags.map((d) => `${d.fileName ? d.fileName + " " : ""}${d.start.line + 1}:${d.start.character + 1} - ${d.messageText}`);
    return { status: "error", ename: "TSError", evalue: lines[0], traceback: lines };
  }

  doComplete(code: string, cursorPos: number) {
    const info = this.converter.complete(this.prevDecl, code, cursorPos);
    return { matches: info.candidates as string[], cursor_start: info.start as number, cursor_end: info.end as number, metadata: {} };
  }

  doInspect(code: string, cursorPos: number) {
    const info = this.converter.inspect(this.prevDecl, code, cursorPos);
    if (!info) return { found: false, data: {}, metadata: {} };
    return { found: true, data: { "text/plain": this.printQuickInfo(info) }, metadata: {} };
  }

  doIsComplete(code: string) {
    const r = this.tslabConverter.isCompleteCode(code);
    return r.completed ? { status: "complete" as const } : { status: "incomplete" as const, indent: r.indent ?? "" };
  }

  interrupt(): void {
    const r = this.running;
    // One Ctrl-C can arrive twice (a process-group SIGINT plus the launcher's forwarded copy); the
    // copy must not hit the next queued cell.
    if (!r || r.interrupted || Date.now() - this.lastInterruptAt < DUPLICATE_SIGINT_MS) return;
    this.lastInterruptAt = Date.now();
    r.interrupted = true;
    const e = new KeyboardInterrupt();
    r.ctrl.abort(e);
    r.reject(e);
  }

  commOpen(commId: string, targetName: string, m: CommData): boolean {
    return this.display.commHost.open(commId, targetName, m);
  }
  commMsg(commId: string, m: CommData): boolean {
    return this.display.commHost.msg(commId, m);
  }
  commClose(commId: string, m: CommData): boolean {
    return this.display.commHost.close(commId, m);
  }
  commInfo(targetName?: string): Record<string, { target_name: string }> {
    return this.display.commHost.list(targetName);
  }

  shutdown(): void {
    this.interrupt();
    try { this.converter.close(); } catch { /* closing is best effort */ }
  }
}

/**
 * `{ a }` -> `{ a: a }`. tslab's converter rewrites references to earlier cells' variables into
 * `exports.a`, but not shorthand properties, so `JSON.stringify({ a })` in a later cell threw
 * "a is not defined". The two forms mean the same in every object literal (and in destructuring
 * assignments), and the edit stays on the same line, so diagnostics keep their line numbers.
 */
export function expandShorthandProperties(code: string): string {
  const ts = tsForTslab;
  const sf = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const ends: Array<[number, string]> = [];
  const visit = (node: any): void => {
    if (node.kind === ts.SyntaxKind.ShorthandPropertyAssignment) ends.push([node.name.end, node.name.text]);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  let out = code;
  for (const [end, name] of ends.sort((x, y) => y[0] - x[0])) out = `${out.slice(0, end)}: ${name}${out.slice(end)}`;
  return out;
}
