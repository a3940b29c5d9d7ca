#!/usr/bin/env node
// Builds the native addon (`npm run build:native`, run by `npm install`). The CUDA backend (issue 9)
// is compiled in when MOESCOPE_CUDA=1, or automatically when both nvcc and an NVIDIA GPU are present;
// MOESCOPE_CUDA=0 forces the CPU build. Without a GPU the command is the CPU build it always was:
//   cmake-js compile -d native --out build        (plus -DMOESCOPE_CUDA=OFF, the default)
// `--cuda-check` (npm run build:cuda) compiles the CUDA backend even with no GPU, into build-cuda/,
// so CI proves the CUDA code compiles without touching the CPU addon in build/.
"use strict";
const { spawnSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const args = process.argv.slice(2);
const cudaCheck = args.includes("--cuda-check");

function findNvcc() {
  if (process.env.CUDACXX && fs.existsSync(process.env.CUDACXX)) return process.env.CUDACXX;
  const r = spawnSync("sh", ["-c", "command -v nvcc"], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  const candidates = ["/usr/local/cuda/bin/nvcc"];
  try {
    for (const d of fs.readdirSync("/usr/local")) if (/^cuda-[0-9.]+$/.test(d)) candidates.push(`/usr/local/${d}/bin/nvcc`);
  } catch {}
  return candidates.find((c) => fs.existsSync(c)) || null;
}

function hasGpu() {
  if (fs.existsSync("/dev/nvidia0")) return true;
  const r = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" });
  return r.status === 0 && /GPU \d+/.test(r.stdout || "");
}

const env = process.env.MOESCOPE_CUDA;
const nvcc = findNvcc();
let cuda;
if (cudaCheck || env === "1") cuda = true;
else if (env === "0") cuda = false;
else cuda = !!nvcc && hasGpu();
if (cuda && !nvcc) {
  console.error("[build-native] MOESCOPE_CUDA=1 but nvcc was not found (PATH, $CUDACXX, /usr/local/cuda*/bin). HINT: install the CUDA toolkit or unset MOESCOPE_CUDA");
  process.exit(1);
}

const out = cudaCheck ? "build-cuda" : "build";
const cmakeJs = path.join(root, "node_modules", "cmake-js", "bin", "cmake-js");
const cmd = [cmakeJs, "compile", "-d", "native", "--out", out, `--CDMOESCOPE_CUDA=${cuda ? "ON" : "OFF"}`];
if (cuda) {
  cmd.push(`--CDCMAKE_CUDA_COMPILER=${nvcc}`);
  // sm_80 (A100) and sm_90 (H100/H200) unless the caller asks for others (e.g. "89" for an L4).
  cmd.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.MOESCOPE_CUDA_ARCHS || "80;90"}`);
}
if (process.env.MOESCOPE_BUILD_PARALLEL) cmd.push("--parallel", process.env.MOESCOPE_BUILD_PARALLEL);
console.log(`[build-native] ${cuda ? `CUDA backend on (nvcc ${nvcc})` : "CPU build"} -> ${out}/`);
const r = spawnSync(process.execPath, cmd, { cwd: root, stdio: "inherit" });
process.exit(r.status === null ? 1 : r.status);
