/**
 * Executes one nbformat-4 notebook through a fresh moescope kernel, the way nbclient does: code
 * cells in order, outputs rebuilt from iopub (streams merged, clear_output honoured including
 * `wait`, update_display_data applied to every output with that display_id, in any cell so far),
 * execution counts from the replies. Stops at the first error unless `allowErrors`; the cells after
 * it keep no outputs and no count, so a saved notebook never mixes old and new results.
 */
import * as fs from "fs";
import * as path from "path";
import type { Message } from "../protocol/wire";
import { KernelClient } from "./kernel-client";

export type Output =
  | { output_type: "stream"; name: string; text: string }
  | { output_type: "display_data"; data: Record<string, unknown>; metadata: Record<string, unknown>; transient?: unknown }
  | { output_type: "execute_result"; execution_count: number; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

export interface Cell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  metadata: Record<string, unknown>;
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
}

export interface Notebook {
  cells: Cell[];
  metadata: Record<string, any>;
  nbformat: number;
  nbformat_minor: number;
}

export interface RunOptions {
  /** Kernel working directory; defaults to the notebook's folder, as in Jupyter. */
  cwd?: string;
  allowErrors?: boolean;
  cellTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called before each code cell (1-based index among code cells). */
  onCell?: (index: number, total: number) => void;
}

export interface CellError {
  cell: number;
  ename: string;
  evalue: string;
}

export interface RunResult {
  notebook: Notebook;
  errors: CellError[];
  seconds: number;
}

export const sourceText = (s: string | string[]): string => (Array.isArray(s) ? s.join("") : s);

/** nbformat stores multi-line strings as lists of lines; Jupyter writes them that way, so do we. */
export function splitLines(text: string): string[] {
  const lines = text.split("\n").map((l, i, a) => (i < a.length - 1 ? l + "\n" : l));
  return lines[lines.length - 1] === "" ? lines.slice(0, -1) : lines;
}

export function readNotebook(file: string): Notebook {
  const nb = JSON.parse(fs.readFileSync(file, "utf8")) as Notebook;
  if (nb.nbformat !== 4 || !Array.isArray(nb.cells)) throw new Error(`${file}: not an nbformat 4 notebook`);
  return nb;
}

/** Written like Jupyter does (1-space indent, multi-line strings as line lists, trailing newline), so diffs stay small. */
export function writeNotebook(file: string, nb: Notebook): void {
  const lineify = (data: Record<string, unknown>) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(data)) {
      out[k] = typeof v === "string" && (k.startsWith("text/") || k === "image/svg+xml") ? splitLines(v) : v;
    }
    return out;
  };
  const cells = nb.cells.map((c) => {
    const cell: any = { ...c, source: splitLines(sourceText(c.source)) };
    if (c.cell_type === "code") {
      cell.outputs = (c.outputs ?? []).map((o) => {
        if (o.output_type === "stream") return { ...o, text: splitLines(o.text) };
        if (o.output_type === "display_data" || o.output_type === "execute_result") {
          const { transient: _t, ...rest } = o as any;
          return { ...rest, data: lineify(o.data) };
        }
        return o;
      });
    }
    return cell;
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ ...nb, cells }, null, 1) + "\n");
}

/**
 * Builds one cell's outputs from its iopub messages. `displays` is shared across the notebook:
 * an update_display_data in cell 9 rewrites an output of cell 3, as a live frontend would.
 */
export class OutputCollector {
  outputs: Output[] = [];
  private clearPending = false;
  constructor(private readonly displays: Map<string, Output[]>) {}

  handle(msg: Message): void {
    const c = msg.content;
    const type = msg.header.msg_type;
    if (type === "clear_output") {
      if (c.wait) this.clearPending = true;
      else this.outputs = [];
      return;
    }
    if (type === "update_display_data") {
      // Updates do not count as new output for clear_output(wait=True), as in JupyterLab.
      const id = c.transient?.display_id;
      for (const o of (id && this.displays.get(id)) || []) {
        (o as any).data = c.data;
        (o as any).metadata = c.metadata ?? {};
      }
      return;
    }
    if (!["stream", "display_data", "execute_result", "error"].includes(type)) return;
    if (this.clearPending) {
      this.outputs = [];
      this.clearPending = false;
    }
    if (type === "stream") {
      const last = this.outputs[this.outputs.length - 1];
      if (last && last.output_type === "stream" && last.name === c.name) last.text += c.text;
      else this.outputs.push({ output_type: "stream", name: c.name, text: c.text });
    } else if (type === "display_data") {
      const o: Output = { output_type: "display_data", data: c.data, metadata: c.metadata ?? {} };
      this.outputs.push(o);
      const id = c.transient?.display_id;
      if (id) this.displays.set(id, [...(this.displays.get(id) ?? []), o]);
    } else if (type === "execute_result") {
      this.outputs.push({ output_type: "execute_result", execution_count: c.execution_count, data: c.data, metadata: c.metadata ?? {} });
    } else {
      this.outputs.push({ output_type: "error", ename: c.ename, evalue: c.evalue, traceback: c.traceback ?? [] });
    }
  }
}

export async function runNotebook(file: string, opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const nb = readNotebook(file);
  const client = new KernelClient({ cwd: opts.cwd ?? path.dirname(path.resolve(file)), env: opts.env });
  const errors: CellError[] = [];
  const code = nb.cells.filter((c) => c.cell_type === "code");
  for (const c of code) {
    c.outputs = [];
    c.execution_count = null;
  }
  await client.start();
  try {
    nb.metadata.language_info = client.languageInfo;
    const displays = new Map<string, Output[]>();
    let stopped = false;
    for (let i = 0; i < code.length; i++) {
      const cell = code[i];
      const src = sourceText(cell.source);
      if (stopped || src.trim() === "") continue;
      opts.onCell?.(i + 1, code.length);
      const collector = new OutputCollector(displays);
      let reply: Message | undefined;
      try {
        const r = await client.execute(src, { timeoutMs: opts.cellTimeoutMs });
        r.iopub.forEach((m) => collector.handle(m));
        reply = r.reply;
        if (r.interrupted) {
          const note = `interrupted: the cell ran past the runner's limit of ${(opts.cellTimeoutMs ?? 0) / 1000} s (--timeout)`;
          collector.handle({ header: { msg_type: "stream" }, content: { name: "stderr", text: note + "\n" } } as unknown as Message);
          if (reply.content.status === "ok") reply = { ...reply, content: { ...reply.content, status: "error", ename: "Timeout", evalue: note } };
        }
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        collector.outputs.push({ output_type: "error", ename: "RunnerError", evalue: message, traceback: [message] });
      }
      cell.outputs = collector.outputs;
      cell.execution_count = typeof reply?.content.execution_count === "number" ? reply.content.execution_count : null;
      if (!reply || reply.content.status !== "ok") {
        errors.push({ cell: i + 1, ename: reply?.content.ename ?? "RunnerError", evalue: reply?.content.evalue ?? String((collector.outputs.at(-1) as any)?.evalue ?? "") });
        if (!opts.allowErrors || !reply) stopped = true;
      }
    }
  } finally {
    await client.stop();
  }
  return { notebook: nb, errors, seconds: (Date.now() - started) / 1000 };
}
