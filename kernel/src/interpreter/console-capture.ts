/**
 * Sends what JS writes to process.stdout/stderr (console.log, util.format...) to the notebook as
 * stream output. Only JS-level writes: native fd 1/2 output is captured by ./native-output.ts.
 * Kernel diagnostics must use fs.writeSync(2, ...), which bypasses this.
 */
export function captureConsole(write: (name: "stdout" | "stderr", text: string) => void): void {
  for (const name of ["stdout", "stderr"] as const) {
    const stream = process[name] as NodeJS.WriteStream;
    stream.write = ((chunk: unknown, encOrCb?: unknown, cb?: unknown): boolean => {
      const enc = typeof encOrCb === "string" ? (encOrCb as BufferEncoding) : "utf8";
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString(enc);
      write(name, text);
      const done = typeof encOrCb === "function" ? encOrCb : cb;
      if (typeof done === "function") process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
  }
}
