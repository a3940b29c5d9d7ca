/**
 * The CUDA weight decoders (native/src/cuda/dequant.cuh) are bit-identical to the CPU's exact
 * dequantiser for every supported type. They are __host__ __device__, so this runs without a GPU:
 * nvcc compiles native/tools/cuda-decode-check.cu for the host against the CPU engine library
 * (build/libmoescope_engine.a) and runs it. The routing kernel's per-token body is checked the same way
 * against the CPU's rule with every expert intervention, and the decode GEMV's Q4_K/Q6_K chunk decoders
 * (8 per super-block, summed) against the CPU's dequantised weights dotted in double. Skipped where
 * nvcc is missing.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";

const root = path.join(__dirname, "..", "..");
const nvcc = ["/usr/local/cuda/bin/nvcc", ...(() => {
  try {
    return fs.readdirSync("/usr/local").filter((d) => /^cuda-[0-9.]+$/.test(d)).map((d) => `/usr/local/${d}/bin/nvcc`);
  } catch {
    return [];
  }
})()].find((p) => fs.existsSync(p));
const lib = path.join(root, "build", "libmoescope_engine.a");

describe.runIf(!!nvcc && fs.existsSync(lib))("CUDA decoders on the host", () => {
  it("match TypeTraits::to_float bit for bit (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K); the decode GEMV's Q4_K/Q6_K chunk dots; routing matches the CPU rule", () => {
    const exe = path.join(os.tmpdir(), `moescope-cuda-decode-check-${process.pid}`);
    execFileSync(nvcc!, ["-std=c++17", "-O2", `-I${path.join(root, "native", "src")}`, path.join(root, "native", "tools", "cuda-decode-check.cu"), lib, "-lpthread", "-o", exe], { stdio: "pipe" });
    const out = execFileSync(exe, { encoding: "utf8" });
    fs.rmSync(exe, { force: true });
    expect(out).toContain("routing ok");
    expect(out).toContain("all decoders match");
    expect(out.match(/ values bit-identical/g)?.length).toBe(8);
    expect(out.match(/ chunk dot ok/g)?.length).toBe(2);
  }, 240_000);
});
