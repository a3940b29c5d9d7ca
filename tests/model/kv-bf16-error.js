// How far a BF16 KV cache moves the logits from the default F32 cache, on the golden fixtures. Not a
// test (the BF16 path's correctness is tests/model/kvcache.test.ts): run it by hand after `npm run build`,
//   node tests/model/kv-bf16-error.js
"use strict";
const fs = require("fs");
const path = require("path");
const { Model } = require(path.resolve(__dirname, "../../dist/engine/src/index.js"));

const fx = (...p) => path.join(__dirname, "..", "fixtures", "golden", ...p);
(async () => {
  for (const name of ["tiny-scout", "tiny-maverick"]) {
    const m = await Model.load(fx(name, "model.gguf"));
    const V = m.config.nVocab;
    for (const p of ["p1", "p_long"]) {
      const toks = m.tokenize(fs.readFileSync(fx("prompts", `${p}.txt`), "utf8"));
      const n = Math.min(toks.length, 64);
      const a = await m.run(toks, { logitsLast: n });
      const b = await m.run(toks, { logitsLast: n, kvCache: "bf16" });
      let num = 0, den = 0, same = 0;
      for (let i = 0; i < a.logits.length; i++) { num += (a.logits[i] - b.logits[i]) ** 2; den += a.logits[i] ** 2; }
      const argmax = (l, r) => { let x = 0; for (let v = 1; v < V; v++) if (l[r * V + v] > l[r * V + x]) x = v; return x; };
      for (let r = 0; r < n; r++) same += argmax(a.logits, r) === argmax(b.logits, r);
      console.log(`${name} ${p} (${toks.length} tokens), last ${n} rows: relative logit change ${Math.sqrt(num / den).toExponential(2)}, top-1 unchanged ${same}/${n}`);
    }
  }
})();
