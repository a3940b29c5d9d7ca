// Prefill and decode speed after long prompts, where attention dominates. Not a test (speed is never
// asserted): run it by hand after `npm run build`,
//   node tests/model/long-context-bench.js MODEL.gguf [CONTEXTS, default 512,4096] [THREADS, default 2] [DECODE, default 32]
// Each context length: one run of a synthetic prompt of that many tokens plus DECODE decoded tokens.
"use strict";
const path = require("path");
const { Model } = require(path.resolve(__dirname, "../../dist/engine/src/index.js"));

(async () => {
  const [file, contexts = "512,4096", threads = "2", decodeTokens = "32"] = process.argv.slice(2);
  if (!file) throw new Error("usage: node tests/model/long-context-bench.js MODEL.gguf [CONTEXTS] [THREADS] [DECODE]");
  const m = await Model.load(file, { threads: Number(threads) });
  for (const L of contexts.split(",").map(Number)) {
    const prompt = Int32Array.from({ length: L }, (_, i) => 1000 + ((i * 7919) % 30000));
    const t = await m.run(prompt, { maxNewTokens: Number(decodeTokens), stopAtEog: false });
    const decode = (t.generated.length - 1) / t.timing.decodeSeconds;
    console.log(`context ${L}: prefill ${(L / t.timing.prefillSeconds).toFixed(1)} tok/s, decode ${decode.toFixed(1)} tok/s`);
  }
})();
