// Writes notebooks/views-gallery.ipynb (unexecuted): one cell per view, on the tiny-scout fixture.
// The notebook is the browser test's input and the views' user documentation; regenerate it with
// `node tests/widgets/make-gallery.js` after changing the list below.
const fs = require("fs");
const path = require("path");

const cells = [
  ["md", `# moescope views gallery

Every view is one call on a trace and emits one output that renders everywhere: the live plotly chart (JupyterLab/VS Code via \`application/vnd.plotly.v1+json\`, classic Notebook and nbconvert HTML via \`text/html\` with plotly.js inlined once per page — no CDN), a PNG rendered in Node, and a text summary. Long traces are sampled or pooled, and the view says so.

This notebook runs on the tiny random-weight fixture (4 layers, 4 experts, 4 heads), so the pictures show structure, not meaning.`],
  ["code", `import { Model, display, routingGrid, routerLogits, expertText, expertLoad, coactivation, attentionHeads, attentionHead, attentionText, residualNorms, logitLens, compareTraces, liveGeneration, linkedView } from "moescope";
const model = await Model.load("../tests/fixtures/golden/tiny-scout/model.gguf");
const prompt = "The quick brown fox jumps over the lazy dog";
const trace = await model.run(prompt, { capture: ["routing", "blocks.*.attn.hook_pattern", "blocks.*.hook_resid_post"], maxNewTokens: 8 });
trace.toString()`],
  ["md", "## Expert routing\nTokens × MoE layers: colour is the chosen expert, intensity its gate."],
  ["code", "await routingGrid(trace)"],
  ["md", "Router logits of one layer, tokens × experts."],
  ["code", "await routerLogits(trace, { layer: 1 })"],
  ["md", "The prompt tinted by its expert at one layer; hover a token for every expert's logit and gate and the top-1 margin."],
  ["code", "await expertText(trace, { layer: 2 })"],
  ["md", "Expert load and routing entropy per layer."],
  ["code", "await expertLoad(trace)"],
  ["md", "Co-activation between consecutive MoE layers: P(expert at the next layer | expert here)."],
  ["code", "await coactivation(trace, { layer: 0 })"],
  ["md", "## Attention\nAll heads of a layer (chunk boundaries dashed when the text is longer than a chunk; NoPE/global layers labelled in the title)."],
  ["code", "await attentionHeads(trace, { layer: 3 })"],
  ["md", "One head zoomed, with token labels."],
  ["code", "await attentionHead(trace, { layer: 0, head: 1 })"],
  ["md", "Where one query token looks, as tinted text."],
  ["code", "await attentionText(trace, { layer: 1, query: 12 })"],
  ["md", "## Activations\nResidual stream norm per layer and position."],
  ["code", "await residualNorms(trace)"],
  ["md", "Logit lens: each layer's residual through the final norm and lm_head (exact: computed by the engine, one run per layer)."],
  ["code", "await logitLens(model, trace, { maxPositions: 12 })"],
  ["md", "Two runs compared: the same prompt with expert 1 of layer 1 ablated."],
  ["code", `const ablated = await model.run(prompt, { capture: "routing", interventions: { ablateExperts: [{ layer: 1, expert: 1 }] } });
await compareTraces(trace, ablated, { labels: ["clean", "no L1 e1"], model: model })`],
  ["md", "## Generation\nTokens appear as they are generated, with their experts, in one output updated in place."],
  ["code", `const gen = await liveGeneration(model, "Once upon a time", { maxNewTokens: 12 });
gen.text`],
  ["md", "## Linked panels\nClick a token (text or chart column): the chart, the attention panel and the routing detail follow, with no model run. Clicking a row of the routing grid at the top of this notebook (the same run) selects that token here too."],
  ["code", "await linkedView(trace, { layer: 2 })"],
];

const nb = {
  cells: cells.map(([kind, src], i) => {
    const source = src.split("\n").map((l, j, a) => (j < a.length - 1 ? l + "\n" : l));
    const id = `cell-${String(i).padStart(2, "0")}`;
    return kind === "md" ? { cell_type: "markdown", id, metadata: {}, source } : { cell_type: "code", execution_count: null, id, metadata: {}, outputs: [], source };
  }),
  metadata: {
    kernelspec: { display_name: "moescope (TypeScript)", language: "typescript", name: "moescope" },
    language_info: { name: "typescript", file_extension: ".ts", mimetype: "text/typescript" },
  },
  nbformat: 4,
  nbformat_minor: 5,
};
const out = path.join(__dirname, "..", "..", "notebooks", "views-gallery.ipynb");
fs.writeFileSync(out, JSON.stringify(nb, null, 1) + "\n");
console.log(`wrote ${out}`);
