/**
 * Errors thrown by moescope. Native errors arrive as plain Errors with a string `code`
 * ("GGUF_BAD_MAGIC", "CANCELLED", ...); `wrapNative` turns them into MoescopeError subclasses so
 * that a notebook can `catch (e) { if (e instanceof CancelledError) ... }`.
 */
export class MoescopeError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = "MoescopeError";
  }
}

export class CancelledError extends MoescopeError {
  constructor(message = "cancelled") {
    super(message, "CANCELLED");
    this.name = "CancelledError";
  }
}

export class CaptureBudgetError extends MoescopeError {
  constructor(message: string, readonly bytes: number, readonly budget: number) {
    super(message, "CAPTURE_OVER_BUDGET");
    this.name = "CaptureBudgetError";
  }
}

export function wrapNative(e: unknown): Error {
  if (!(e instanceof Error)) return new MoescopeError(String(e), "INTERNAL");
  const code = (e as Error & { code?: string }).code;
  if (code === "CANCELLED") return new CancelledError();
  if (typeof code === "string" && !(e instanceof MoescopeError)) {
    const w = new MoescopeError(e.message, code);
    w.stack = `${w.name} [${code}]: ${e.message}\n${(new Error().stack ?? "").split("\n").slice(2).join("\n")}`;
    return w;
  }
  return e;
}

/** "Expected integer in [0, 47] for layer but received -1 of type number" */
export function invalidParameter(name: string, expected: string, value: unknown): MoescopeError {
  return new MoescopeError(`Expected ${expected} for ${name} but received ${JSON.stringify(value)} of type ${typeof value}`, "BAD_ARGUMENT");
}
