/**
 * The display and comm API that notebook cells use (`import { display } from "moescope"`).
 *
 * Display protocol: an object shows itself by implementing a method keyed by `MIMEBUNDLE`
 * (`Symbol.for("moescope.mimebundle")`) that returns `{ data, metadata? }`, where `data` maps MIME
 * types to values (strings, or JSON for `application/json` and `*+json` types; binary images as
 * base64 strings). Deno's `Symbol.for("Jupyter.display")` (returning `data` only) is honoured too,
 * so its ecosystem's helpers work. Strings show as text/plain; anything else as its util.inspect text.
 * `bundle(data, metadata)` makes a raw bundle a displayable value (e.g. a cell's result);
 * `display.bundle(data, metadata)` and `display.html/markdown/...` show one at once.
 *
 * Every display gets a display_id, so `display(x).update(y)` replaces it in place (progress, live
 * charts); `display(x, { displayId })` lets several outputs share an id.
 *
 * Comms: `registerCommTarget(name, fn)` answers a frontend's comm_open; `openComm(target, data,
 * buffers)` opens one from the kernel. Binary data travels as buffers, never as JSON arrays.
 *
 * This module never imports the kernel: the kernel installs a `Frontend` with `setFrontend` and
 * feeds inbound comm messages to `commHost`. Outside a kernel, display prints text/plain to stdout
 * and comms are unavailable.
 */
import { inspect } from "util";
import { randomUUID } from "crypto";

export const MIMEBUNDLE: unique symbol = Symbol.for("moescope.mimebundle");
const DENO_DISPLAY = Symbol.for("Jupyter.display");

export type MimeData = Record<string, unknown>;
export interface MimeBundle {
  data: MimeData;
  metadata?: Record<string, unknown>;
}
/** What an object implements to choose how it is shown. */
export interface Displayable {
  [MIMEBUNDLE](): MimeBundle;
}

export interface DisplayOptions {
  /** Share or reuse an output slot; a fresh id is made when omitted. */
  displayId?: string;
  /** Metadata merged over the bundle's own (e.g. `{"image/png": {width: 400}}`). */
  metadata?: Record<string, unknown>;
}

export interface CommMessage {
  data: unknown;
  metadata: Record<string, unknown>;
  buffers: Uint8Array[];
}

/** Installed by the kernel; the engine only ever calls it. */
export interface Frontend {
  display(bundle: MimeBundle, opts: { displayId: string; update: boolean }): void;
  clearOutput(wait: boolean): void;
  commOpen(commId: string, targetName: string, data: unknown, metadata: Record<string, unknown>, buffers: Uint8Array[]): void;
  commMsg(commId: string, data: unknown, metadata: Record<string, unknown>, buffers: Uint8Array[]): void;
  commClose(commId: string, data: unknown, metadata: Record<string, unknown>, buffers: Uint8Array[]): void;
}

let frontend: Frontend | undefined;
export function setFrontend(f: Frontend | undefined): void {
  frontend = f;
}
/** Whether displays reach a notebook (a kernel installed its frontend). */
export function hasFrontend(): boolean {
  return frontend !== undefined;
}

/** The bundle an object shows as (used for cell results too). */
export function toMimeBundle(obj: unknown): MimeBundle {
  if (obj !== null && (typeof obj === "object" || typeof obj === "function")) {
    const own = (obj as any)[MIMEBUNDLE];
    if (typeof own === "function") {
      const b = own.call(obj) as MimeBundle;
      if (!b || typeof b !== "object" || !b.data) throw new TypeError("[moescope.mimebundle]() must return { data, metadata? }");
      return { data: b.data, metadata: b.metadata ?? {} };
    }
    const deno = (obj as any)[DENO_DISPLAY];
    if (typeof deno === "function") return { data: deno.call(obj), metadata: {} };
  }
  if (typeof obj === "string") return { data: { "text/plain": obj }, metadata: {} };
  return { data: { "text/plain": inspect(obj, { depth: 4, maxArrayLength: 100, breakLength: 100 }) }, metadata: {} };
}

function withMetadata(b: MimeBundle, extra?: Record<string, unknown>): MimeBundle {
  return extra ? { data: b.data, metadata: { ...(b.metadata ?? {}), ...extra } } : b;
}

/** A shown output that can be replaced in place. */
export class DisplayHandle {
  constructor(readonly displayId: string) {}
  update(obj: unknown, opts: { metadata?: Record<string, unknown> } = {}): void {
    emit(withMetadata(toMimeBundle(obj), opts.metadata), this.displayId, true);
  }
}

function emit(bundle: MimeBundle, displayId: string, update: boolean): void {
  if (frontend) frontend.display(bundle, { displayId, update });
  else if (!update || process.stdout.isTTY) process.stdout.write(String(bundle.data["text/plain"] ?? `[${Object.keys(bundle.data).join(", ")}]`) + "\n");
}

function displayFn(obj: unknown, opts: DisplayOptions = {}): DisplayHandle {
  const id = opts.displayId ?? randomUUID();
  emit(withMetadata(toMimeBundle(obj), opts.metadata), id, false);
  return new DisplayHandle(id);
}

/** A raw bundle as a displayable value: return it from a cell, or pass it to display/update. */
export function bundle(data: MimeData, metadata: Record<string, unknown> = {}): Displayable {
  return { [MIMEBUNDLE]: () => ({ data, metadata }) };
}
const shorthand = (type: string) => (content: string, opts?: DisplayOptions) =>
  displayFn(bundle({ [type]: content, "text/plain": type === "text/plain" ? content : `<${type}>` }), opts);

/**
 * Show `obj` as a MIME bundle; returns a handle whose `update` replaces the output in place.
 * The shorthands show at once too: `display.html("<b>hi</b>")`, `display.bundle({...}, metadata)`.
 */
export const display = Object.assign(displayFn, {
  bundle: (data: MimeData, metadata: Record<string, unknown> = {}, opts?: DisplayOptions) => displayFn(bundle(data, metadata), opts),
  html: shorthand("text/html"),
  markdown: shorthand("text/markdown"),
  latex: shorthand("text/latex"),
  svg: shorthand("image/svg+xml"),
  text: shorthand("text/plain"),
  json: (value: unknown, opts?: DisplayOptions) => displayFn(bundle({ "application/json": value, "text/plain": JSON.stringify(value) }), opts),
  png: (bytes: Uint8Array, opts?: DisplayOptions) => displayFn(bundle({ "image/png": Buffer.from(bytes).toString("base64"), "text/plain": "<image/png>" }), opts),
});

/** Clear the cell's output; with `wait`, only when the next output arrives (flicker-free redraws). */
export function clearOutput(opts: { wait?: boolean } = {}): void {
  frontend?.clearOutput(!!opts.wait);
}

// ---- progress -------------------------------------------------------------------------------

export interface ProgressOptions {
  /** What is counted ("tokens", "layers"...). */
  unit?: string;
  label?: string;
  /** Redraws at most this often (updates are messages to every frontend). */
  minIntervalMs?: number;
}

/**
 * A progress line updated in place: `const p = progress(128, { unit: "tokens" }); p.tick(); ... p.done()`.
 * Shows done/total, rate per second and elapsed time as HTML (a bar) and text/plain.
 */
export class Progress {
  private count = 0;
  private lastDraw = 0;
  private readonly started = Date.now();
  private readonly handle: DisplayHandle;
  constructor(readonly total: number | undefined, private readonly opts: ProgressOptions = {}) {
    this.handle = displayFn(this.render(false));
  }
  get value(): number {
    return this.count;
  }
  tick(n = 1): void {
    this.set(this.count + n);
  }
  set(count: number): void {
    this.count = count;
    const now = Date.now();
    if (now - this.lastDraw >= (this.opts.minIntervalMs ?? 200)) {
      this.lastDraw = now;
      this.handle.update(this.render(false));
    }
  }
  done(): void {
    this.handle.update(this.render(true));
  }
  private render(finished: boolean): Displayable {
    const secs = Math.max(1e-3, (Date.now() - this.started) / 1000);
    const unit = this.opts.unit ?? "steps";
    const rate = `${(this.count / secs).toFixed(1)} ${unit}/s`;
    const of = this.total ? `${this.count}/${this.total}` : `${this.count}`;
    const text = `${this.opts.label ? this.opts.label + ": " : ""}${of} ${unit}, ${rate}, ${secs.toFixed(1)} s${finished ? " (done)" : ""}`;
    const pct = this.total ? Math.min(100, (100 * this.count) / this.total) : finished ? 100 : 0;
    const esc = text.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const html = `<div style="font-family:monospace"><div style="display:inline-block;width:200px;height:10px;background:#ddd;vertical-align:middle"><div style="width:${pct.toFixed(1)}%;height:100%;background:#f59e0b"></div></div> ${esc}</div>`;
    return bundle({ "text/html": html, "text/plain": text });
  }
}

export function progress(total?: number, opts?: ProgressOptions): Progress {
  return new Progress(total, opts);
}

// ---- comms -----------------------------------------------------------------------------------

export class Comm {
  private msgHandlers: ((m: CommMessage) => void)[] = [];
  private closeHandlers: ((m: CommMessage) => void)[] = [];
  closed = false;
  constructor(readonly commId: string, readonly targetName: string) {}
  send(data: unknown = {}, buffers: Uint8Array[] = [], metadata: Record<string, unknown> = {}): void {
    if (this.closed) throw new Error(`comm ${this.commId} is closed`);
    requireFrontend().commMsg(this.commId, data, metadata, buffers);
  }
  close(data: unknown = {}, buffers: Uint8Array[] = []): void {
    if (this.closed) return;
    this.closed = true;
    comms.delete(this.commId);
    requireFrontend().commClose(this.commId, data, {}, buffers);
  }
  onMsg(fn: (m: CommMessage) => void): this {
    this.msgHandlers.push(fn);
    return this;
  }
  onClose(fn: (m: CommMessage) => void): this {
    this.closeHandlers.push(fn);
    return this;
  }
  /** @internal inbound traffic, from commHost */
  _deliver(kind: "msg" | "close", m: CommMessage): void {
    for (const fn of kind === "msg" ? this.msgHandlers : this.closeHandlers) fn(m);
  }
}

type TargetHandler = (comm: Comm, open: CommMessage) => void;
const targets = new Map<string, TargetHandler>();
const comms = new Map<string, Comm>();

function requireFrontend(): Frontend {
  if (!frontend) throw new Error("comms need a Jupyter frontend (run inside the moescope kernel)");
  return frontend;
}

/** Answer comm_open requests for `name` from the frontend. */
export function registerCommTarget(name: string, fn: TargetHandler): void {
  targets.set(name, fn);
}
export function unregisterCommTarget(name: string): void {
  targets.delete(name);
}

/** Open a comm from the kernel side to a frontend target. */
export function openComm(targetName: string, data: unknown = {}, buffers: Uint8Array[] = [], metadata: Record<string, unknown> = {}): Comm {
  const comm = new Comm(randomUUID(), targetName);
  comms.set(comm.commId, comm);
  requireFrontend().commOpen(comm.commId, targetName, data, metadata, buffers);
  return comm;
}

/** The kernel's side: inbound comm traffic. Handler errors propagate to the kernel, which logs them. */
export const commHost = {
  /** Returns false when no target is registered (the kernel then closes the comm). */
  open(commId: string, targetName: string, m: CommMessage): boolean {
    const fn = targets.get(targetName);
    if (!fn) return false;
    const comm = new Comm(commId, targetName);
    comms.set(commId, comm);
    fn(comm, m);
    return true;
  },
  msg(commId: string, m: CommMessage): boolean {
    const c = comms.get(commId);
    if (!c) return false;
    c._deliver("msg", m);
    return true;
  },
  close(commId: string, m: CommMessage): boolean {
    const c = comms.get(commId);
    if (!c) return false;
    c.closed = true;
    comms.delete(commId);
    c._deliver("close", m);
    return true;
  },
  list(targetName?: string): Record<string, { target_name: string }> {
    const out: Record<string, { target_name: string }> = {};
    for (const [id, c] of comms) if (!targetName || c.targetName === targetName) out[id] = { target_name: c.targetName };
    return out;
  },
};
