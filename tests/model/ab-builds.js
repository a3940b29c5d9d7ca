// A/B of whole-model speed between builds of the addon, in ONE process: one Model per build, runs
// alternating, medians. On a shared, noisy machine this resolves differences that separate processes
// (minutes apart) do not. Not a test: run it by hand after `npm run build`, with copies of
// build/Release/moescope.node from the builds to compare,
//   node tests/model/ab-builds.js [--prefill N] MODEL.gguf exact|fast ROUNDS a.node b.node [...]
// Each round: 64 decoded tokens after an 8-token prompt, then an N-token prefill (default 256), per build.
"use strict";
const path = require("path");
const native = require(path.resolve(__dirname, "../../dist/engine/src/native.js"));
const { Model } = require(path.resolve(__dirname, "../../dist/engine/src/index.js"));

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
(async () => {
  const args = process.argv.slice(2);
  const at = args.indexOf("--prefill");
  const nPrefill = at >= 0 ? Number(args.splice(at, 2)[1]) : 256;
  const [file, precision, rounds, ...addons] = args;
  if (!file || addons.length === 0) throw new Error("usage: node tests/model/ab-builds.js MODEL.gguf exact|fast ROUNDS a.node b.node ...");
  const models = [];
  for (const a of addons) {
    const addon = require(path.resolve(a));
    native.addon = () => addon; // Model.load asks native.addon() for the addon it loads with
    models.push(await Model.load(file, { threads: 2 }));
  }
  const prompt = Int32Array.from({ length: Math.max(8, nPrefill) }, (_, i) => 1000 + ((i * 7919) % 30000));
  const decode = addons.map(() => []), prefill = addons.map(() => []);
  for (let r = 0; r < Number(rounds); r++)
    for (let j = 0; j < models.length; j++) {
      const d = await models[j].run(prompt.subarray(0, 8), { maxNewTokens: 64, stopAtEog: false, precision });
      decode[j].push((d.generated.length - 1) / d.timing.decodeSeconds);
      const p = await models[j].run(prompt, { precision });
      prefill[j].push(prompt.length / p.timing.prefillSeconds);
    }
  addons.forEach((a, j) =>
    console.log(`${path.basename(a)} ${precision}: decode ${median(decode[j]).toFixed(1)} tok/s, prefill (${prompt.length}) ${median(prefill[j]).toFixed(1)} tok/s (medians of ${rounds})`));
})();
