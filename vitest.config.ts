import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The native addon and the kernel subprocesses share 2 cores: run files one at a time.
    fileParallelism: false,
  },
});
