#!/usr/bin/env node
/**
 * What travels to the GPU machine (native/tools/device-check.sh --travel / --untravel). The device tool
 * sends the working tree (tracked and untracked-but-not-ignored files) plus the carried build outputs,
 * 64 MiB in all; the repository's fixtures alone are ~77 MiB. `--travel` takes the files the device
 * check never reads out of git's index (git rm --cached: the files stay on disk, untouched) and ignores
 * them through .git/info/exclude between two marker lines; `--untravel` puts both back. Commit nothing
 * in between: the index then lacks those files.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const root = path.resolve(__dirname, "..", "..");
const git = (...a) => execFileSync("git", a, { cwd: root, encoding: "utf8", maxBuffer: 1 << 26 });
const exclude = path.join(root, ".git", "info", "exclude");
const BEGIN = "# >>> device-travel: left behind (native/tools/device-travel.js --untravel)", END = "# <<< device-travel";

// The fixtures device-check.js reads: the models, their golden/ref64 tensors for p1 and p3, the long prompt.
// small-scout-Q8_0 (5 MB) stays behind for room: tiny-scout-q8_0 and moescope-cuda-gemv-bench (real shapes) cover Q8_0.
const MODELS = ["tiny-scout", "tiny-scout-f16", "tiny-scout-bf16", "tiny-maverick", "tiny-scout-q8_0", "small-scout-Q6_K", "small-scout-Q4_K_M"];
const SUITE = ["tiny-scout", "tiny-maverick"];  // run through the whole golden suite
function stays(f) {
  if (/^(models|notebooks)\//.test(f)) return false;
  let m = /^tests\/fixtures\/ref64\/([^/]+)\/(.*)$/.exec(f);
  if (m) return ["tiny-scout", "tiny-maverick", "tiny-scout-bf16-hf"].includes(m[1]) && /^golden-p[13]\.safetensors$/.test(m[2]);
  m = /^tests\/fixtures\/golden\/([^/]+)\/(.*)$/.exec(f);
  if (!m) return true;
  const [, name, rest] = m;
  if (name === "prompts") return true;
  if (!MODELS.includes(name)) return false;
  if (name === "tiny-maverick" && rest.startsWith("hf/")) return false;  // 6.8 MB; its GGUF twin is checked
  if (rest === "model.gguf" || rest.startsWith("hf/")) return true;
  if (/^golden-p[13]\/ref64\.safetensors$/.test(rest)) return true;
  return SUITE.includes(name) && (/^golden-(p1|p3|long)\/golden\.(safetensors|json)$/.test(rest) || rest === "golden-long/ref64.safetensors");
}

function stripBlock(text) {
  const a = text.indexOf(BEGIN), b = text.indexOf(END);
  return a < 0 ? text : text.slice(0, a) + text.slice(b + END.length + 1);
}

module.exports = { stays };
if (require.main !== module) return;

const mode = process.argv[2];
if (mode === "--travel") {
  const leave = git("ls-files", "-z").split("\0").filter((f) => f && !stays(f));
  if (!leave.length) { console.log("nothing to leave behind (already travelling?)"); process.exit(0); }
  execFileSync("git", ["rm", "--cached", "-q", "--pathspec-from-file=-"], { cwd: root, input: leave.join("\n") });
  const prev = fs.existsSync(exclude) ? stripBlock(fs.readFileSync(exclude, "utf8")) : "";
  fs.writeFileSync(exclude, prev + [BEGIN, ...leave.map((f) => "/" + f), END].join("\n") + "\n");
  const bytes = git("ls-files", "-z").split("\0").filter(Boolean).reduce((s, f) => s + fs.statSync(path.join(root, f)).size, 0);
  console.log(`left ${leave.length} files behind; ${(bytes / 1048576).toFixed(1)} MiB of tracked files travel (the tool's limit, 64 MiB, counts the carried paths too)`);
} else if (mode === "--untravel") {
  const text = fs.existsSync(exclude) ? fs.readFileSync(exclude, "utf8") : "";
  const a = text.indexOf(BEGIN), b = text.indexOf(END);
  if (a < 0) { console.log("not travelling"); process.exit(0); }
  const back = text.slice(a + BEGIN.length, b).split("\n").filter(Boolean).map((l) => l.slice(1));
  fs.writeFileSync(exclude, stripBlock(text));
  execFileSync("git", ["reset", "-q", "--pathspec-from-file=-"], { cwd: root, input: back.join("\n") });
  console.log(`${back.length} files back in the index`);
} else {
  console.error("usage: node native/tools/device-travel.js --travel | --untravel");
  process.exit(2);
}
