#!/usr/bin/env node
// The `moescope` command: dispatches to the compiled CLI (see engine/src/cli.ts).
require("../dist/engine/src/cli.js").main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`moescope: ${err && err.message ? err.message : err}\n`); process.exitCode = 1; },
);
