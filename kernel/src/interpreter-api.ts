/**
 * The seam between the protocol layer (kernel/src/protocol: sockets, messages, queues) and a
 * language (kernel/src/interpreter: TypeScript). Neither side imports the other; both import this.
 * Like xeus's xinterpreter: the protocol side does the bookkeeping (execution counts, busy/idle,
 * execute_input, replies, stop_on_error) and calls these `do*` methods.
 */

export interface Bundle {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export interface ErrorOutcome {
  status: "error";
  ename: string;
  evalue: string;
  traceback: string[];
}
export type ExecuteOutcome = { status: "ok"; result?: Bundle } | ErrorOutcome;

export interface CommData {
  data: unknown;
  metadata: Record<string, unknown>;
  buffers: Uint8Array[];
}

/** Where the interpreter sends output; the protocol side routes it to the request that caused it. */
export interface OutputSink {
  stream(name: "stdout" | "stderr", text: string): void;
  display(bundle: Bundle, displayId: string, update: boolean): void;
  clearOutput(wait: boolean): void;
  commOpen(commId: string, targetName: string, m: CommData): void;
  commMsg(commId: string, m: CommData): void;
  commClose(commId: string, m: CommData): void;
}

export interface LanguageInfo {
  name: string;
  version: string;
  mimetype: string;
  file_extension: string;
  pygments_lexer: string;
  codemirror_mode: string | Record<string, unknown>;
  nbconvert_exporter?: string;
}

export interface Interpreter {
  readonly implementation: string;
  readonly implementationVersion: string;
  readonly languageInfo: LanguageInfo;
  readonly banner: string;
  readonly helpLinks: { text: string; url: string }[];

  /** Called once, before anything else: all output goes through `sink`. */
  attach(sink: OutputSink): void;
  doExecute(code: string, opts: { silent: boolean; storeHistory: boolean; executionCount: number }): Promise<ExecuteOutcome>;
  doComplete(code: string, cursorPos: number): { matches: string[]; cursor_start: number; cursor_end: number; metadata: Record<string, unknown> };
  doInspect(code: string, cursorPos: number, detailLevel: number): { found: boolean; data: Record<string, unknown>; metadata: Record<string, unknown> };
  doIsComplete(code: string): { status: "complete" | "incomplete" | "invalid" | "unknown"; indent?: string };
  /** Cancels the running execution, if any (async work via its AbortSignal). Safe to call any time. */
  interrupt(): void;

  /** Comms: false from open means no such target (the protocol side then closes the comm). */
  commOpen(commId: string, targetName: string, m: CommData): boolean;
  commMsg(commId: string, m: CommData): boolean;
  commClose(commId: string, m: CommData): boolean;
  commInfo(targetName?: string): Record<string, { target_name: string }>;

  shutdown(): void;
}
