/**
 * Turning what a cell threw into Jupyter's error triple: ename = err.name, evalue = err.message,
 * traceback = the JS stack without the kernel's own frames (they say nothing about the user's code).
 */
import { inspect } from "util";
import type { ErrorOutcome } from "../interpreter-api";

/** What an interrupted cell reports; the name frontends and nbclient know from Python kernels. */
export class KeyboardInterrupt extends Error {
  override name = "KeyboardInterrupt";
  constructor() {
    super("Interrupted");
  }
}

const internalFrame = /\(node:|at node:|[\\/]kernel[\\/]src[\\/]|[\\/]tslab[\\/]dist[\\/]/;

export function errorOutcome(e: unknown): ErrorOutcome {
  if (e instanceof KeyboardInterrupt) return { status: "error", ename: e.name, evalue: e.message, traceback: [`${e.name}: ${e.message}`] };
  if (e instanceof Error || (e && typeof e === "object" && "stack" in e && "message" in e)) {
    const err = e as Error;
    const name = err.name || "Error";
    let stack = (err.stack ?? `${name}: ${err.message}`).split("\n");
    // vm prefixes a thrown error's stack with the source line and a caret; the frames start at the name.
    const head = stack.findIndex((l) => l.startsWith(name));
    if (head > 0) stack = stack.slice(head);
    stack = stack.filter((l) => !internalFrame.test(l));
    return { status: "error", ename: name, evalue: String(err.message ?? ""), traceback: stack };
  }
  const text = inspect(e);
  return { status: "error", ename: "Error", evalue: text, traceback: [`Uncaught ${text}`] };
}
