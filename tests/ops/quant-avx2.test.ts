// The AVX2 kernels on a CPU that has AVX-512. There the registry hands the decode GEMVs and the
// prefill tile to quant_avx512.cpp, so quant.test.ts alone would leave the AVX2 kernels, which every
// AVX2-only CPU runs, untested. This file runs quant.test.ts's suites again with MOESCOPE_NO_AVX512=1
// set before the addon loads (vitest runs each test file in a process of its own; quant.test.ts
// checks that the switch took). On other CPUs it would only repeat them, so it skips.
import { execFileSync } from "child_process";
import * as path from "path";
import { describe, it } from "vitest";

const ADDON = path.resolve(__dirname, "../../build/Release/moescope.node");
const kernel = execFileSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(ADDON)}).dotKernel)`]).toString();

if (kernel === "avx512+avx2+fma") {
  process.env.MOESCOPE_NO_AVX512 = "1";
  await import("./quant.test");
} else {
  describe("AVX2 kernels on an AVX-512 CPU", () => {
    it.skip(`this CPU's kernels are ${kernel}: quant.test.ts already tests them`, () => {});
  });
}
