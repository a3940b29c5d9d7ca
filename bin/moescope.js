#!/usr/bin/env node
// The `moescope` command. Each subcommand lives with the part of the package it belongs to;
// this table is the only place that knows them all (see README, "Command line").
const path = require("path");
const dist = path.join(__dirname, "..", "dist");
const commands = {
  generate: () => require(path.join(dist, "engine/src/cli.js")).main,
  trace: () => require(path.join(dist, "engine/src/cli.js")).main,
  "image-plan": () => require(path.join(dist, "engine/src/images/cli.js")).main,
  synth: () => require(path.join(dist, "engine/src/synth.js")).synthMain,
  kernel: () => require(path.join(dist, "kernel/src/cli.js")).main,
  install: () => require(path.join(dist, "kernel/src/cli.js")).main,
  uninstall: () => require(path.join(dist, "kernel/src/cli.js")).main,
};
const [command, ...args] = process.argv.slice(2);
if (!command || !(command in commands)) {
  process.stderr.write(`usage: moescope <${Object.keys(commands).join("|")}> [options]\n`);
  process.exitCode = 2;
} else {
  Promise.resolve()
    .then(() => commands[command]()(command, args))
    .then((code) => { process.exitCode = code ?? 0; },
      (err) => { process.stderr.write(`moescope ${command}: ${err && err.message ? err.message : err}\n`); process.exitCode = 1; });
}
