/**
 * Ambient cancellation. A host (the Jupyter kernel) sets the signal of the work it is running, for
 * example the current cell; every long engine call that was not given its own `signal` follows it.
 * This is how an interrupt reaches a generation started deep inside user code.
 */
let ambient: AbortSignal | undefined;

export function setAmbientSignal(signal: AbortSignal | undefined): void {
  ambient = signal;
}

export function ambientSignal(): AbortSignal | undefined {
  return ambient;
}

/** The signal an engine call should obey: its own, else the ambient one. */
export function effectiveSignal(own?: AbortSignal): AbortSignal | undefined {
  return own ?? ambient;
}
