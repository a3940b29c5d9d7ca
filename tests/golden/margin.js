// How close the engine runs to the golden tolerances of tests/golden/text.test.ts (tiny Scout and
// tiny Maverick, GGUF, prompts p1-p4): the worst attention-probability error as a fraction of what the
// test allows, and the worst logits / layer-output relative error as a fraction of 1e-5. Not a test:
// run it by hand after `npm run build` when a kernel changes its rounding order,
//   node tests/golden/margin.js
"use strict";
const path = require("path");
const { Model } = require(path.resolve(__dirname, "../../dist/engine/src/index.js"));
const { fixtureTensors } = require(path.resolve(__dirname, "../../dist/engine/src/fixture-tensors.js"));
const { readSafetensors } = require(path.resolve(__dirname, "../../dist/engine/src/safetensors.js"));
const fs = require("fs");
const FX = path.resolve(__dirname, "..", "fixtures");
const maxAbs = (a, b) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
const rel = (a, b) => { let n = 0, d = 0; for (let i = 0; i < a.length; i++) { n += (a[i] - b[i]) ** 2; d += b[i] ** 2; } return Math.sqrt(n / d); };
(async () => {
  for (const name of ["tiny-scout", "tiny-maverick"]) {
    const m = await Model.load(path.join(FX, "golden", name, "model.gguf"));
    let worstProb = 0, worstRel = 0;
    for (const p of ["p1", "p2", "p3", "p4"]) {
      const g = readSafetensors(path.join(FX, "golden", name, `golden-${p}`, "golden.safetensors")).tensors;
      const tokens = m.tokenize(fs.readFileSync(path.join(FX, "golden", "prompts", `${p}.txt`), "utf8"));
      const tr = await m.run(tokens, { logitsLast: tokens.length, capture: { names: ["blocks.*.hook_resid_post", "routing", "blocks.*.attn.hook_pattern", "ln_final.hook_normalized"] } });
      const ours = new Map(fixtureTensors(tr).map((t) => [t.name, t]));
      const probs64 = readSafetensors(path.join(FX, "ref64", name, `golden-${p}.safetensors`)).tensors;
      worstRel = Math.max(worstRel, rel(tr.logits, g.get("logits").data) / 1e-5);
      for (let l = 0; l < m.config.nLayer; l++) {
        worstRel = Math.max(worstRel, rel(ours.get(`layers.${l}.out`).data, g.get(`layers.${l}.out`).data) / 1e-5);
        const n = `layers.${l}.attn_probs`;
        const allowed = Math.max(1e-6, 2 * maxAbs(g.get(n).data, probs64.get(n).data));
        worstProb = Math.max(worstProb, maxAbs(ours.get(n).data, probs64.get(n).data) / allowed);
      }
    }
    console.log(`${name}: worst attention-prob error / allowed ${worstProb.toFixed(3)}, worst logits/layer rel err / 1e-5 ${worstRel.toFixed(3)}`);
  }
})();
