// What the opt-in fast mode costs in accuracy, on the quantized golden fixtures. Not a test (the
// assertions are in quantized.test.ts): run it by hand after `npm run build`,
//   node tests/golden/fast-mode-error.js
// Prompt: relative error of all prompt logits against float64 on the dequantised weights (ref64), exact
// and fast; the fast mode's int8 products there are only those of at most 4 rows (experts that get few
// of the prompt's tokens). Decode: 32 greedy tokens after the prompt, where every product is int8 in
// fast mode: how many of them the fast mode generates identically to the exact one before they part.
"use strict";
const fs = require("fs");
const path = require("path");
const { Model } = require(path.resolve(__dirname, "../../dist/engine/src/index.js"));
const { readSafetensors } = require(path.resolve(__dirname, "../../dist/engine/src/safetensors.js"));

const fx = (...p) => path.join(__dirname, "..", "fixtures", "golden", ...p);
const relErr = (a, b) => {
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) { n += (a[i] - b[i]) ** 2; d += b[i] ** 2; }
  return Math.sqrt(n / d);
};
(async () => {
  for (const name of ["tiny-scout-q8_0", "small-scout-Q8_0", "small-scout-Q6_K", "small-scout-Q4_K_M"]) {
    const m = await Model.load(fx(name, "model.gguf"));
    const cells = [];
    for (const p of ["p1", "p3"]) {
      const toks = m.tokenize(fs.readFileSync(fx("prompts", `${p}.txt`), "utf8"));
      const ref = readSafetensors(fx(name, `golden-${p}`, "ref64.safetensors")).tensors.get("logits").data;
      const e = await m.run(toks, { logitsLast: toks.length, maxNewTokens: 32, stopAtEog: false });
      const f = await m.run(toks, { logitsLast: toks.length, maxNewTokens: 32, stopAtEog: false, precision: "fast" });
      let same = 0;
      while (same < 32 && e.generated[same] === f.generated[same]) same++;
      cells.push(`${p}: prompt logits exact ${relErr(e.logits, ref).toExponential(1)} fast ${relErr(f.logits, ref).toExponential(1)}, ` +
        `decode ${same}/32 tokens identical`);
    }
    console.log(`${name}  ${cells.join("  |  ")}`);
  }
})();
