// The AVX2 kernels on a CPU that has AVX-512. There the registry hands the decode GEMVs, the prefill
// tile and panels and the fast mode's int8 tiles to the AVX-512 ones, so the other suites alone would
// leave the AVX2 kernels, which every AVX2-only CPU runs, untested. This file runs quant.test.ts's
// kernel suites and the quantized golden fixtures (tests/golden/quantized.test.ts) again with
// MOESCOPE_NO_AVX512=1 set before the addon loads (vitest runs each test file in a process of its
// own; quant.test.ts checks that the switch took). On other CPUs it would only repeat them: skipped.
import { execFileSync } from "child_process";
import * as path from "path";
import { describe, it } from "vitest";

const ADDON = path.resolve(__dirname, "../../build/Release/moescope.node");
const kernel = execFileSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(ADDON)}).dotKernel)`]).toString();

if (kernel === "avx512+avx2+fma") {
  process.env.MOESCOPE_NO_AVX512 = "1";
  await import("./quant.test");
  await import("../golden/quantized.test");
} else {
  describe("AVX2 kernels on an AVX-512 CPU", () => {
    it.skip(`this CPU's kernels are ${kernel}: quant.test.ts and quantized.test.ts already test them`, () => {});
  });
}
