// Writes the walkthrough notebooks notebooks/01-*.ipynb … 07-*.ipynb, then executes them through the
// moescope kernel with the TypeScript runner (kernel/src/runner, needs `npm run build`) and saves
// them WITH outputs, so GitHub shows them. Regenerate after the default model changes:
//   node notebooks/make-walkthroughs.js            (write + execute; exits non-zero if a cell fails)
//   node notebooks/make-walkthroughs.js --no-run   (write only)
// The committed copies drop the inlined plotly.js (4.8 MB per notebook): views keep their static
// PNG, their plotly JSON for JupyterLab/VS Code, and re-running a notebook brings the library back.
// Cells load `Model.load()` with no path: $MOESCOPE_MODEL, else TinyScout (models/tinyscout).
const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

const HERE = __dirname;
const md = (s) => ["md", s];
const code = (s) => ["code", s];

const NOTEBOOKS = {};

NOTEBOOKS["01-quickstart"] = [
  md(`# 1 · Quickstart: load, generate, chat

moescope runs a Llama 4 model **inside this kernel**: every cell can run the model and look at what happened inside it.
This walkthrough loads the default model, tokenizes, generates with streaming, and uses the chat template.

The default model is **TinyScout**, a Llama 4 small enough to ship in the package (a few MB), trained on synthetic scenes (coloured shapes on a canvas) with captions, questions and simple sentences, so that its internals have checkable structure. It has Scout's architecture (spec \`/work/shared/docs/llama4-spec.md\` §1–2): a MoE block in every layer with **top-1 sigmoid routing plus an always-on shared expert**, chunked RoPE attention with QK-norm in three of every four layers and **global NoPE attention** in the fourth, and a vision tower.`),
  code(`import { Model } from "moescope";
const model = await Model.load();   // $MOESCOPE_MODEL, else models/tinyscout
model.config.describe`),
  md(`Read the layer lines: \`rope chunked qk-norm\` are local layers (attention stays inside a chunk of \`attention_chunk_size\` tokens, 8192 in Scout); \`nope global temperature-tuned\` is the global layer with no positional encoding (spec §1.2: \`use_rope(i) = (i+1) % 4 != 0\`, so layers 3, 7, …, 47 in Scout). \`experts 8 (top-1)\`: each token goes to exactly one routed expert per layer.

How big is it, and what does one token cost?`),
  code(`const mib = (b: number) => (b / 2 ** 20).toFixed(2) + " MiB";
({ format: model.config.format, mapped: mib(model.config.mappedBytes), activePerToken: mib(model.config.activeBytesPerToken), threads: model.config.threads, device: model.config.device })`),
  md(`## Tokens

Llama 4 uses a byte-level BPE tokenizer (spec §4.1); TinyScout's vocabulary is small (a few hundred pieces) because its world is small. \`tokenize\` adds \`<|begin_of_text|>\` by default.`),
  code(`const ids = model.tokenize("a triangle has three corners.");
console.log(Array.from(ids));
model.tokenStrings(ids)`),
  md(`## Generate, streaming

\`generate\` returns the text and a **Trace** (what was captured during the run). \`onToken\` is called for each new token, so text streams into the cell as it is produced. Greedy decoding is the default; pass \`temperature\`, \`topP\`, \`topK\`, \`seed\` to sample.`),
  code(`const g1 = await model.generate("a square has", {
  maxNewTokens: 16,
  onToken: (t) => process.stdout.write(t.text),
});
console.log("\\n---", g1.trace.stopReason, "after", g1.tokens.length, "new tokens");`),
  md(`## The chat template

Instruct Llama 4 wraps turns in header tokens (spec §4.3): \`<|header_start|>role<|header_end|>\\n\\n content <|eot|>\`, and the generation prompt ends with the assistant header. \`model.chat\` writes exactly that (the tokenizer adds \`<|begin_of_text|>\` in front); generation stops at \`<|eot|>\`, an end-of-generation token.`),
  code(`const prompt = model.chat([{ role: "user", content: "what colour is the sky?" }]);
prompt`),
  code(`const g2 = await model.generate(prompt, { maxNewTokens: 16, onToken: (t) => process.stdout.write(t.text) });
console.log("\\nstop:", g2.trace.stopReason);`),
  md(`TinyScout only saw questions about *images* in chat form, so without an image it answers in the style of a scene description. Give it an image: \`imageChat\` places \`<|image|>\` in the user turn (like \`model.chat\`, it leaves \`<|begin_of_text|>\` to the tokenizer), and \`runWithImages\` expands it into patch tokens, runs the vision tower and splices its features into the text sequence (spec §3.6–3.7).`),
  code(`import { imageChat, runWithImages, display } from "moescope";
import * as path from "path";
import * as fs from "fs";
// TinyScout ships example scenes next to its weights; other models may not.
const examples = path.join(model.path, "examples");
const scenes = fs.existsSync(path.join(examples, "scenes.json")) ? JSON.parse(fs.readFileSync(path.join(examples, "scenes.json"), "utf8")) : [];
const scene = scenes[1];
if (scene) display.png(fs.readFileSync(path.join(model.path, scene.file)));
scene ? scene.objects.map((o: any) => \`\${o.colour} \${o.shape} (\${o.pos})\`) : "this model ships no example scenes"`),
  code(`if (scene) {
  const chat = imageChat([{ role: "user", content: [{ type: "image", image: path.join(model.path, scene.file) }, { type: "text", text: scene.question }] }]);
  const { trace } = await runWithImages(model, chat.text, chat.images, { maxNewTokens: 16 });
  console.log(scene.question, "→", model.decode(trace.generated));
}`),
  md(`## Watching generation

\`liveGeneration\` streams tokens into one output that is updated in place, each token coloured by the expert it was routed to in every layer. That is the question of the next notebook.`),
  code(`import { liveGeneration } from "moescope";
const live = await liveGeneration(model, model.chat([{ role: "user", content: "how many shapes are there?" }]), { maxNewTokens: 12 });
live.text`),
];

const LOAD_SCENES = `import * as path from "path";
import * as fs from "fs";
const exampleDir = path.join(model.path, "examples");
const scenes: any[] = fs.existsSync(path.join(exampleDir, "scenes.json")) ? JSON.parse(fs.readFileSync(path.join(exampleDir, "scenes.json"), "utf8")) : [];
const scenePath = (s: any) => path.join(model.path, s.file);`;

NOTEBOOKS["02-which-experts-fire"] = [
  md(`# 2 · Which experts fire

In every MoE layer of Llama 4 a router scores each token against every expert; the token goes to the **single highest-scoring expert** (top-1 on the raw logits), and the sigmoid of that logit, the *gate*, scales the expert's **input** (spec §2.6). A shared expert sees every token. So "which expert fired" is one integer per token per layer, and the interesting question is whether those integers mean anything.

\`capture: "routing"\` records the router logits, the chosen experts and the gates in every MoE layer; it is cheap.`),
  code(`import { Model, runWithImages, imageChat, routingGrid, expertText, expertLoad, coactivation, tokenRouting, RoutingStats, routingByModality } from "moescope";
const model = await Model.load();
${LOAD_SCENES}
const scene = scenes[0];
const chat = imageChat([{ role: "user", content: scene ? [{ type: "image", image: scenePath(scene) }, { type: "text", text: scene.question }] : "describe the image." }]);
const { trace, inputs } = scene
  ? await runWithImages(model, chat.text, chat.images, { capture: "routing", maxNewTokens: 16 })
  : { trace: await model.run(chat.text, { capture: "routing", maxNewTokens: 16 }), inputs: undefined };
model.decode(trace.generated)`),
  md(`## The routing grid

Rows are tokens, columns MoE layers; colour is the chosen expert, intensity the gate. Look for **vertical bands**: the block of \`<|patch|>\` image tokens in the middle, the text around it. If routing were noise the colours would be scattered evenly.`),
  code(`await routingGrid(trace)`),
  md(`The same routing as tinted text, one layer at a time. Hover a token to see every expert's logit and the top-1 margin (how close the token came to another expert).`),
  code(`await expertText(trace, { layer: 0 })`),
  md(`Per token, \`tokenRouting\` gives the chosen expert, its gate, the margin, and the entropy of the softmax over router logits (log 8 ≈ 2.08 nats would mean "no preference").`),
  code(`const words = trace.tokenTexts;
const answerStart = trace.nPrompt;
tokenRouting(trace, 0).filter((r) => r.pos >= answerStart).map((r) => ({ token: JSON.stringify(words[r.pos]), expert: r.expert, gate: +r.gate.toFixed(3), margin: +r.margin.toFixed(2), entropy: +r.entropy.toFixed(2) }))`),
  md(`## Image tokens vs text tokens

\`routingByModality\` splits each layer's load between image (patch) tokens and text tokens. Experts that only image tokens use are a sign the model keeps the two modalities apart in some layers.`),
  code(`const patchPositions = trace.tokenTexts.map((t, i) => (t === "<|patch|>" ? i : -1)).filter((i) => i >= 0);
const pct = (a: ArrayLike<number>) => Array.from(a, (v) => Math.round(100 * v));
inputs ? routingByModality(trace, patchPositions).map((m) => ({ layer: m.layer, "image tokens → expert (%)": pct(m.imageShare).join(" "), "text tokens → expert (%)": pct(m.textShare).join(" "), divergence: +m.divergence.toFixed(2) })) : "text-only run"`),
  md(`## Load and co-activation

Expert load per layer (and the routing entropy): a balanced layer uses all experts about equally. Co-activation: given the expert a token used in layer *l*, which does it use in layer *l+1*? Sharp rows mean routing decisions are correlated across depth.`),
  code(`await expertLoad(trace)`),
  code(`await coactivation(trace, { layer: 0 })`),
  md(`## Specialization, measured

One example proves nothing. Run the model over many sentences, label each token with a category (colour word, shape word, position word, image token, function word), and measure the **mutual information** between category and chosen expert, per layer. The baseline is the same computation with the categories shuffled: what MI looks like by chance for this many tokens. We use TinyScout's held-out set (samples never seen in training, every token labelled by the data generator); TinyScout's training report (\`models/tinyscout/claims.json\`) gives the same measurement from the training code, so the two can be compared.`),
  code(`const COLOUR = new Set(["red", "green", "blue", "yellow", "colour", "colours"]);
const SHAPE = new Set(["circle", "square", "triangle", "circles", "squares", "triangles", "shape", "shapes"]);
const POSITION = new Set(["top", "bottom", "left", "right", "center", "middle"]);
const category = (piece: string, isImage: boolean) => {
  if (isImage) return 4;
  const w = piece.trim().toLowerCase().replace(/[^a-z]/g, "");
  if (!w) return -1;                                   // punctuation and special tokens are left out
  return COLOUR.has(w) ? 1 : SHAPE.has(w) ? 2 : POSITION.has(w) ? 3 : 0;
};
const sentences = [
  "a triangle has three corners.", "the sky is blue.", "grass is green.", "a tomato is red.", "the sun is yellow.",
  "the red square is at the top left.", "the blue circle is in the center.", "the green triangle is at the bottom right.",
  "a yellow square at the left and a red circle at the right.", "left is the opposite of right.", "circles, squares and triangles are shapes.",
];
const stats = new RoutingStats(model.config);
const cats: number[] = [];
const tokIds: number[] = [];   // the word type of each labelled token (its id), for the stricter baseline below
const chosen: number[][] = model.config.layers.map(() => []);
// Image tokens of the held-out set: what lies under each (0 background, else 1 + colour * 3 + shape) and its expert.
const imgLabel: number[] = [];
const imgChosen: number[][] = model.config.layers.map(() => []);
const imageToken = model.config.imageTokenId;
async function addRun(tr: any, patchSet: Set<number>) {
  stats.add(tr);
  const L = model.config.nLayer;
  for (let p = 0; p < tr.nPrompt; p++) {
    const c = category(tr.tokenTexts[p], patchSet.has(p));
    if (c < 0) continue;
    cats.push(c);
    tokIds.push(tr.tokens[p]);
    for (let l = 0; l < L; l++) { const r = tr.routing(l); chosen[l].push(r.experts[r.positions.indexOf(p) * r.k]); }
  }
}
// TinyScout ships a held-out set with every token already labelled (category 5 = special tokens, left out);
// other models get the sentences above and the example scenes, labelled by the word lists.
const heldFile = path.join(model.path, "heldout", "heldout.json");
const heldMi: any[] = fs.existsSync(heldFile) ? JSON.parse(fs.readFileSync(heldFile, "utf8")).mi ?? [] : [];
for (const h of heldMi) {
  const ids = Int32Array.from(h.tokens);
  const tr = h.image ? (await runWithImages(model, model.tokenize(h.text, { bos: false }), [path.join(model.path, "heldout", h.image)], { capture: "routing" })).trace : await model.run(ids, { capture: "routing" });
  stats.add(tr);
  let k = 0;  // image tokens come in row-major order: k-th patch token, k-th entry of patch_labels
  h.cats.forEach((c: number, p: number) => {
    if (c === 4 && h.patch_labels) {
      imgLabel.push(h.patch_labels[k++]);
      model.config.layers.forEach((_, l) => { const r = tr.routing(l); imgChosen[l].push(r.experts[r.positions.indexOf(p) * r.k]); });
    }
    if (c === 5) return;
    cats.push(c);
    tokIds.push(h.tokens[p]);
    model.config.layers.forEach((_, l) => { const r = tr.routing(l); chosen[l].push(r.experts[r.positions.indexOf(p) * r.k]); });
  });
}
if (!heldMi.length) for (const s of sentences) await addRun(await model.run(s, { capture: "routing" }), new Set());
if (!heldMi.length) for (const s of scenes) {
  const c = imageChat([{ role: "user", content: [{ type: "image", image: scenePath(s) }, { type: "text", text: s.question }] }]);
  const r = await runWithImages(model, c.text, c.images, { capture: "routing" });
  const patches = new Set<number>();
  r.trace.tokens.forEach((t: number, i: number) => { if (r.trace.tokenTexts[i] === "<|patch|>") patches.add(i); });
  await addRun(r.trace, patches);
}
\`\${cats.length} labelled tokens from \${heldMi.length ? \`\${heldMi.length} held-out samples\` : "the sentences and example scenes"}\``),
  code(`function mi(x: number[], y: number[]): number {
  const n = x.length, joint = new Map<string, number>(), px = new Map<number, number>(), py = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    joint.set(x[i] + "," + y[i], (joint.get(x[i] + "," + y[i]) ?? 0) + 1 / n);
    px.set(x[i], (px.get(x[i]) ?? 0) + 1 / n); py.set(y[i], (py.get(y[i]) ?? 0) + 1 / n);
  }
  let s = 0;
  for (const [k, p] of joint) { const [a, b] = k.split(",").map(Number); s += p * Math.log2(p / (px.get(a)! * py.get(b)!)); }
  return s;
}
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const shuffled = (a: number[]) => { const b = a.slice(); for (let i = b.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [b[i], b[j]] = [b[j], b[i]]; } return b; };
// Word-type shuffle: text tokens only; every word type keeps a single category, but which category is
// permuted across word types (same number of types per category). That is the MI *any* grouping of the
// vocabulary gets when routing depends on the token, whether or not the grouping means anything.
const text = cats.map((c, i) => (c !== 4 ? i : -1)).filter((i) => i >= 0);
const typeCat = new Map<number, number>();
text.forEach((i) => typeCat.set(tokIds[i], cats[i]));
const types = [...typeCat.keys()];
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
chosen.map((e, l) => {
  const base = Array.from({ length: 20 }, () => mi(shuffled(cats), e));
  const eText = text.map((i) => e[i]);
  const wordShuffle = Array.from({ length: 20 }, () => {
    const perm = shuffled(types.map((t) => typeCat.get(t)!));
    const newCat = new Map(types.map((t, k) => [t, perm[k]]));
    return mi(text.map((i) => newCat.get(tokIds[i])!), eText);
  });
  return {
    layer: l, "MI bits": +mi(cats, e).toFixed(3), "shuffled (max)": +Math.max(...base).toFixed(3),
    "text-only MI": +mi(text.map((i) => cats[i]), eText).toFixed(3), "word-type shuffle (mean)": +mean(wordShuffle).toFixed(3),
  };
})`),
  md(`How to read the table, left to right:

- **MI vs shuffled**: MI far above the label-shuffled maximum says the chosen expert carries information about the token's category. That is a weak test: image tokens are a category of their own, and routing depends heavily on the token id.
- **text-only MI vs word-type shuffle**: the honest test. Keep only text tokens, and compare with arbitrary groupings of the same words (each word keeps one category, categories permuted across words). Only if the real categories beat arbitrary ones can we say experts specialise by *meaning* (colour, shape, position) rather than just by token.

For the current TinyScout checkpoint the training report (\`tools/train-demo/README.md\`, "The two measured claims") finds the second test **negative**: text routing is token-specific but not more category-specific than an arbitrary grouping of words. A measurement that can come out negative is the point of this notebook: run it on your own model. The image tokens below tell a different story.

## Does routing see what is in the picture?

Every image token is the same token, \`<|patch|>\`: the router can only tell them apart by what the vision tower put into them. So the MI between *what lies under an image token* (background, or the colour and shape of the object covering its centre: 13 labels) and its expert is free of the token-identity confound above, and the label shuffle is the right baseline. (TinyScout's held-out set carries these labels; other models skip this cell.)`),
  code(`imgLabel.length ? imgChosen.map((e, l) => ({
  layer: l,
  "image tokens": e.length,
  "MI(content; expert) bits": +mi(imgLabel, e).toFixed(3),
  "shuffled (max of 20)": +Math.max(...Array.from({ length: 20 }, () => mi(shuffled(imgLabel), e))).toFixed(3),
  "object vs background only": +mi(imgLabel.map((v) => (v > 0 ? 1 : 0)), e).toFixed(3),
})) : "no labelled image tokens for this model"`),
  md(`Which expert took which category, in the layer with the highest MI? \`RoutingStats.topTokens\` then lists the tokens each expert sees most often.`),
  code(`const nameOf = ["function", "colour", "shape", "position", "image"];
const dominant = (l: number) => nameOf.map((name, c) => {
  const counts = new Map<number, number>();
  cats.forEach((k, i) => { if (k === c) counts.set(chosen[l][i], (counts.get(chosen[l][i]) ?? 0) + 1); });
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const [e, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0] ?? [-1, 0];
  return { category: name, tokens: total, "top expert": e, share: total ? +(n / total).toFixed(2) : 0 };
});
const bestLayer = chosen.map((e) => mi(cats, e)).reduce((b, v, l, a) => (v > a[b] ? l : b), 0);
console.log(\`layer \${bestLayer} (highest MI):\`);
dominant(bestLayer)`),
  code(`stats.loadFractions(bestLayer).map((f, e) => ({ expert: e, load: +f.toFixed(3), "top tokens": stats.topTokens(bestLayer, e, 5).map(([t, n]) => \`\${JSON.stringify(model.decode([t]))}×\${n}\`).join(" ") }))`),
];

NOTEBOOKS["03-attention-in-llama4"] = [
  md(`# 3 · Attention in Llama 4: local chunks, global NoPE layers, temperature

Llama 4 interleaves two kinds of attention layer (spec §1.2, §2.4):

| layers | positions | mask | extras |
|---|---|---|---|
| 3 of every 4 | RoPE | **chunked**: a token sees earlier tokens *of its own chunk* only (chunks of 8192, aligned to 0, 8192, …) | QK-norm (Scout) |
| every 4th | **NoPE** (no positional encoding) | plain causal: the whole history | **temperature tuning** of q |

The local layers do the fine-grained work; the global layers are the only path between chunks. Let's see both.`),
  code(`import { Model, attentionHeads, attentionHead, attentionText, layerKind } from "moescope";
const model = await Model.load();
const trace = await model.run("the red square is at the top left. the blue circle is in the center. where is the red square?", {
  capture: ["routing", "blocks.*.attn.hook_pattern"],
});
trace.moeLayers.map((l) => \`layer \${l}: \${layerKind(trace, l)}\`)`),
  md(`## A local (RoPE, chunked) layer

All heads of layer 0. On a short prompt the chunk boundary is never crossed, so the mask is just causal; what differs is the *shape* of attention. Look for **diagonals** (a head that attends to the token itself or the one before it): RoPE encodes relative position, so "look one back" is easy to learn in these layers.`),
  code(`await attentionHeads(trace, { layer: 0 })`),
  md(`## The global NoPE layer

With no positional encoding a NoPE head can only use content (and the causal mask), so look for **columns** rather than diagonals: many queries attending to the same key tokens (the first token, punctuation, or the content words the question needs), wherever they are.`),
  code(`await attentionHeads(trace, { layer: model.config.layers.findIndex((p) => !p.useRope) })`),
  md(`Where does the final token (the "?") look in the global layer? Tinted text, the mean of its heads: the words it needs to answer should stand out.`),
  code(`const q = trace.tokens.length - 1;
await attentionText(trace, { layer: model.config.layers.findIndex((p) => !p.useRope), query: q })`),
  md(`## Temperature tuning

Softmax over more and more keys gets flatter: a NoPE layer that sees 100k tokens would spread its attention thin. Llama 4 sharpens it by scaling the **query** of NoPE layers with the query's position \`p\` (spec §2.4 item 4):

s(p) = 1 + attn_scale · ln(⌊(p+1)/floor_scale⌋ + 1), attn_scale = 0.1, floor_scale = 8192.

It is exactly 1 for the first 8191 positions, so it never matters on short prompts; the spec's reference values are s(8191) = 1.0693147, s(16383) = 1.1098612, s(10⁵) = 1.256495, s(10⁶) = 1.481218.`),
  code(`const s = (p: number) => 1 + 0.1 * Math.log(Math.floor((p + 1) / 8192) + 1);
[0, 8190, 8191, 16383, 1e5, 1e6, 1e7].map((p) => ({ position: p, scale: +s(p).toFixed(7) }))`),
  md(`## Long context: crossing a chunk boundary

Now a prompt longer than one chunk (${"`attention_chunk_size`"} tokens plus a little). We capture attention **only for the last positions** (\`positions: "last"\` keeps a few rows, not an 8k × 8k matrix), then ask: how much attention mass does the last token put on keys *before* the chunk boundary? In a chunked layer it must be exactly 0; in the global layer it need not be.`),
  code(`const chunk = model.config.attnChunk;
const filler = model.tokenize("the sky is blue. grass is green. ");
const n = chunk + 64;
const long = new Int32Array(n);
long[0] = model.config.bosId;
for (let i = 1; i < n; i++) long[i] = filler[(i - 1) % filler.length];
const t0 = Date.now();
const longTrace = await model.run(long, { capture: { names: ["blocks.*.attn.hook_pattern"], positions: "last" }, progress: false });
console.log(\`\${n} tokens in \${((Date.now() - t0) / 1000).toFixed(1)} s\`);
model.config.layers.map((p, l) => {
  const t = longTrace.get(\`blocks.\${l}.attn.hook_pattern\`);
  const [H, rows, S] = t.shape;
  let before = 0;
  for (let h = 0; h < H; h++) for (let k = 0; k < chunk; k++) before += t.data[(h * rows + rows - 1) * S + k];
  return { layer: l, kind: p.useRope ? "RoPE, chunked" : "NoPE, global", "query position": n - 1, "mass on keys < chunk start (mean over heads)": +(before / H).toFixed(4) };
})`),
  md(`The chunked layers put **zero** mass before the boundary: the last 64 tokens only see each other there. Anything the model knows about the first ${"8192"} tokens at this point came through the NoPE layer. That is the design of Llama 4's long context (10M tokens for Scout): local layers stay cheap and position-precise, global layers carry the long-range information, with temperature-tuned queries so their softmax stays sharp.`),
];

NOTEBOOKS["04-residual-stream"] = [
  md(`# 4 · Inside the residual stream

Each Llama 4 layer reads the residual stream, adds the attention output, then adds the FFN output (spec §2.2: \`h = x + Attn(norm(x))\`, \`out = h + FFN(norm(h))\`). In a MoE layer the FFN output is the **shared expert plus the one routed expert** (spec §2.6). Hook points (TransformerLens names) expose each piece.`),
  code(`import { Model, residualNorms, logitLens, computeLogitLens } from "moescope";
const model = await Model.load();
model.hookNames().filter((n) => n.startsWith("blocks.0."))`),
  code(`const prompt = "the sun is yellow. grass is";
const trace = await model.run(prompt, {
  capture: ["blocks.*.hook_resid_pre", "blocks.*.hook_resid_post", "blocks.*.hook_attn_out", "blocks.*.mlp.hook_shared_out", "blocks.*.mlp.hook_routed_out", "routing"],
  maxNewTokens: 2,
});
JSON.stringify(model.decode(trace.generated))`),
  md(`## Norms by layer and position

The residual norm usually grows with depth, since every layer adds to it. Check whether one position stands out: in large models the first token (\`<|begin_of_text|>\`) often carries a far larger norm than the rest, the signature of an "attention sink" that heads use as a place to put attention they do not need.`),
  code(`await residualNorms(trace)`),
  md(`## Who writes what

For the last prompt token, the size of each layer's contributions: attention output, shared expert, routed expert. The routed expert's output depends on the gate, which scales its **input** (not its output), so a gate near 0.5 does not simply halve it.`),
  code(`const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const pos = trace.nPrompt - 1;
model.config.layers.map((_, l) => ({
  layer: l,
  expert: trace.routing(l).experts[trace.routing(l).positions.indexOf(pos)],
  "|resid_pre|": +norm(trace.row(\`blocks.\${l}.hook_resid_pre\`, pos)).toFixed(2),
  "|attn_out|": +norm(trace.row(\`blocks.\${l}.hook_attn_out\`, pos)).toFixed(2),
  "|shared|": +norm(trace.row(\`blocks.\${l}.mlp.hook_shared_out\`, pos)).toFixed(2),
  "|routed|": +norm(trace.row(\`blocks.\${l}.mlp.hook_routed_out\`, pos)).toFixed(2),
  "|resid_post|": +norm(trace.row(\`blocks.\${l}.hook_resid_post\`, pos)).toFixed(2),
}))`),
  md(`## Logit lens

Put each layer's residual through the final norm and the unembedding (as if the model stopped there) and read the top token. Where does the answer ("green") first appear? In a 4-layer model the answer often only forms in the last layer or two; the lens shows which layer wrote it. moescope computes the lens exactly in the engine.`),
  code(`await logitLens(model, trace, { maxPositions: 10 })`),
  md(`The same numbers as data (\`computeLogitLens\`): at the last prompt position, the probability the lens gives the token the model actually generated, layer by layer.`),
  code(`const lens = await computeLogitLens(model, trace, { topK: 5 });
const answerId = trace.generated[0];
const at = lens.positions.indexOf(trace.nPrompt - 1);
lens.layers.map((l, i) => {
  const top = lens.top[i][at];
  const k = top.ids.indexOf(answerId);
  return { layer: l, "top-1": JSON.stringify(model.decode([top.ids[0]])), [\`p(\${JSON.stringify(model.decode([answerId]))})\`]: k >= 0 ? +top.probs[k].toFixed(3) : "< top 5" };
})`),
];

NOTEBOOKS["05-image-grounding"] = [
  md(`# 5 · Image grounding: tiles, tokens, maps, the pointing game

A Llama 4 image becomes tokens in four steps (spec §3): resize into a grid of square **tiles** (336 px in Scout; TinyScout's tower uses a smaller tile, set in its config), cut each tile into 14-px **patches**, merge 2×2 patches by **pixel shuffle** (so 576 patches → 144 tokens per Scout tile), and project into the text model's embedding space. The prompt gets one \`<|patch|>\` placeholder per feature token, and the features replace those embeddings.`),
  code(`import { Model, runWithImages, imageChat, decodeImage, imageTokenGeometry, tileView, attentionToImage, attentionRollout, occlusionMap, groundingView, display } from "moescope";
import * as path from "path";
import * as fs from "fs";
const model = await Model.load();
${LOAD_SCENES.split("\n").slice(2).join("\n")}
const scene = scenes[1];
const file = scenePath(scene);
display.png(fs.readFileSync(file));
scene.objects.map((o: any) => ({ object: \`\${o.colour} \${o.shape}\`, pos: o.pos, box: o.box.join(",") }))`),
  md(`## Tiles and tokens

Ask the model a question about the image; the inputs that come back hold the **plan** (tile grid and sizes), the expanded prompt (where the image tokens went) and the pixel values of every tile.`),
  code(`const chat = imageChat([{ role: "user", content: [{ type: "image", image: file }, { type: "text", text: scene.question }] }]);
const { trace, inputs } = await runWithImages(model, chat.text, chat.images, { capture: ["blocks.*.attn.hook_pattern", "routing"], maxNewTokens: 8 });
const plan = inputs.plans[0];
console.log(scene.question, "→", model.decode(trace.generated));
({ image: \`\${plan.width}×\${plan.height} px\`, grid: \`\${plan.rows}×\${plan.cols} tiles of \${plan.tile} px\`, thumbnail: plan.thumbnail, tokensPerTile: plan.tokensPerTile, imageBlockInPrompt: plan.promptTokens, promptTokens: trace.nPrompt })`),
  code(`void display.png(await tileView(inputs.pixelValues, plan))`),
  md(`Each feature token covers a fixed rectangle of the image: \`imageTokenGeometry\` gives it (after the 2×2 pixel shuffle, one token covers 2×2 patches).`),
  code(`const geo = imageTokenGeometry(plan);
[geo[0], geo[1], geo[geo.length - 1]].map((g) => ({ token: g.token, tile: g.tile, block: [g.blockRow, g.blockCol], patches: g.patches.length, imageRect: g.imageRect && [g.imageRect.x0, g.imageRect.y0, g.imageRect.x1, g.imageRect.y1].map((v) => +v.toFixed(1)) }))`),
  md(`## Grounding maps

For a text token (say the object word in the question), how much attention goes to each image token? \`attentionToImage\` aggregates over layers and heads; we show it on the image for every word of the question. If grounding works, the map for "circle" should light up on the circle.`),
  code(`const patchPositions = trace.tokenTexts.map((t, i) => (t === "<|patch|>" ? i : -1)).filter((i) => i >= 0);
const qStart = patchPositions[patchPositions.length - 1] + 2;
const maps = new Map<number, Float32Array>();
for (let p = qStart; p < trace.nPrompt; p++) maps.set(p, attentionToImage(trace, p, patchPositions).aggregate);
const image = await decodeImage(file);
const shapeWord = [...maps.keys()].find((p) => trace.tokenTexts[p].trim() === scene.objects[0].shape);
await groundingView(image, plan, trace.tokenTexts, maps, { title: scene.question, select: shapeWord })`),
  md(`## The pointing game

A map "points" where it peaks. The pointing game asks: for each object word, does the peak fall inside that object's box? We play it on the scenes that ship with the model (TinyScout's training report does it on a held-out set; see its README for the numbers) and compare with the random baseline: the fraction of image tokens whose centre is inside the box.`),
  code(`// A token "hits" when the centre of its rectangle in the original image lies inside the object's box.
const inside = (rect: { x0: number; y0: number; x1: number; y1: number } | null, box: number[]) => {
  if (!rect) return false;
  const cx = (rect.x0 + rect.x1) / 2, cy = (rect.y0 + rect.y1) / 2;
  return box[0] <= cx && cx < box[2] && box[1] <= cy && cy < box[3];
};
const games: any[] = [];
for (const s of scenes) {
  for (const o of s.objects) {
    const c = imageChat([{ role: "user", content: [{ type: "image", image: scenePath(s) }, { type: "text", text: \`where is the \${o.colour} \${o.shape}?\` }] }]);
    const r = await runWithImages(model, c.text, c.images, { capture: "blocks.*.attn.hook_pattern" });
    const pp = r.trace.tokenTexts.map((t, i) => (t === "<|patch|>" ? i : -1)).filter((i) => i >= 0);
    const word = r.trace.tokenTexts.findIndex((t, i) => i > pp[pp.length - 1] && t.trim() === o.shape);
    if (word < 0) continue;
    const m = attentionToImage(r.trace, word, pp).aggregate;
    const g = imageTokenGeometry(r.inputs.plans[0]);
    let best = 0; for (let i = 1; i < m.length; i++) if (m[i] > m[best]) best = i;
    const random = g.filter((x) => inside(x.imageRect, o.box)).length / g.length;
    games.push({ scene: path.basename(s.file), question: \`where is the \${o.colour} \${o.shape}?\`, peakToken: best, hit: inside(g[best].imageRect, o.box), random: +random.toFixed(3) });
  }
}
const acc = games.filter((g) => g.hit).length / games.length;
const base = games.reduce((a, g) => a + g.random, 0) / games.length;
console.log(\`pointing game: \${(100 * acc).toFixed(0)}% of \${games.length} objects; random baseline \${(100 * base).toFixed(0)}%\`);
games`),
  md(`Seven objects is an anecdote. TinyScout ships a **held-out set** (scenes never seen in training, with the position of each object word and the object's box), so the claim can be measured properly: the same game, per layer (the mean map over that layer's heads) and over all layers, against the random baseline (the share of image tokens inside the box). This takes a few seconds: one forward pass per scene.`),
  code(`const heldFile = path.join(model.path, "heldout", "heldout.json");
const held: any[] = fs.existsSync(heldFile) ? JSON.parse(fs.readFileSync(heldFile, "utf8")).point_test ?? [] : [];
const L = model.config.nLayer;
const hits = new Array(L + 1).fill(0);
let refs = 0, randomSum = 0;
const t0 = Date.now();
for (const s of held) {
  const r = await runWithImages(model, model.tokenize(s.text, { bos: false }), [path.join(model.path, "heldout", s.image)], { capture: "blocks.*.attn.hook_pattern" });
  const pp = r.trace.tokenTexts.map((t, i) => (t === "<|patch|>" ? i : -1)).filter((i) => i >= 0);
  const g = imageTokenGeometry(r.inputs.plans[0]);
  for (const [wordPos, obj] of s.refs) {
    const box = s.boxes[obj];
    const peak = (m: ArrayLike<number>) => { let b = 0; for (let i = 1; i < m.length; i++) if (m[i] > m[b]) b = i; return b; };
    for (let l = 0; l < L; l++) if (inside(g[peak(attentionToImage(r.trace, wordPos, pp, { layers: [l] }).aggregate)].imageRect, box)) hits[l]++;
    if (inside(g[peak(attentionToImage(r.trace, wordPos, pp).aggregate)].imageRect, box)) hits[L]++;
    randomSum += g.filter((x) => inside(x.imageRect, box)).length / g.length;
    refs++;
  }
}
console.log(held.length ? \`\${held.length} held-out scenes, \${refs} object words, \${((Date.now() - t0) / 1000).toFixed(1)} s\` : "this model ships no held-out set");
held.length ? [...hits.map((h, l) => ({ map: l < L ? \`layer \${l}\` : "all layers", "pointing accuracy": +(h / refs).toFixed(3) })), { map: "random baseline", "pointing accuracy": +(randomSum / refs).toFixed(3) }] : []`),
  md(`Compare each row with the random baseline. A layer well above it has heads that look at the object a word names; a layer near it or below does not ground (here the global NoPE layer, whose heads attend by content across the whole prompt, mostly to text). TinyScout's training report (\`models/tinyscout/claims.json\`, explained in \`tools/train-demo/README.md\`) gives the same measurement from the training code, per head, with the best head chosen on a separate validation split, and a stricter baseline: a random image token among those inside *any* object ("finds objects, not which one", about 47 %). The claim holds for this checkpoint: the mean map of all heads points at the named object 67 % of the time and one head of layer 2 97 %. Why the object word, before any answer is asked of it? Because of the data: English picks the preposition by place ("on the left", "in the center", "at the top"), so the word after an object's name already depends on where the object is. Attention maps are a hypothesis about what the model uses; the occlusion map below tests it.`),
  md(`## Other maps: rollout and occlusion

Attention is one view. **Rollout** multiplies attention through the layers (with the residual path), and **occlusion** is causal: grey out one image token's patch at a time and measure how much the probability of the answer drops. Occlusion is the slowest (one run per image token) but it answers "what does the model *need*?", not "what does it look at?".`),
  code(`const answerPos = trace.nPrompt - 1;
const roll = attentionRollout(trace, answerPos, patchPositions).map;
const occ = await occlusionMap(model, inputs, answerPos, trace.generated[0], { unit: "block" });
console.log(\`occlusion target: \${JSON.stringify(model.decode([occ.target.token]))} at position \${occ.target.position} (log p = \${occ.target.logprob.toFixed(3)})\`);
await groundingView(image, plan, ["attention", "rollout", "occlusion"], new Map<number, ArrayLike<number>>([[0, attentionToImage(trace, answerPos, patchPositions).aggregate], [1, roll], [2, occ.delta]]), { title: "what the first answer token looks at (attention, rollout) and needs (occlusion)" })`),
];

NOTEBOOKS["06-interventions"] = [
  md(`# 6 · Interventions: ablate, force, steer, and see what changes

Observing routing shows correlation. Interventions test cause: change one thing inside the forward pass and compare. moescope runs them natively, inside the pass, and records them in the trace (\`trace.record\`). Everything here is a \`model.run\` option, and \`runWithImages\` passes them through.

We ask about an image, so the answer depends on something the model has to look up: "what colour is the circle?"`),
  code(`import { Model, runWithImages, imageChat, compareTraces, routingFlips, display } from "moescope";
const model = await Model.load();
${LOAD_SCENES}
const scene = scenes.find((s) => /colour/.test(s.question)) ?? scenes[0];
if (scene) display.png(fs.readFileSync(scenePath(scene)));
const chat = imageChat([{ role: "user", content: scene ? [{ type: "image", image: scenePath(scene) }, { type: "text", text: scene.question }] : "what colour is the circle?" }]);
const { trace: base, inputs } = await runWithImages(model, chat.text, chat.images, { capture: "routing", maxNewTokens: 8 });
// Later runs reuse the expanded prompt and the image features: same tokens, same embeddings at the patch positions.
const run = (tokens: Int32Array, opts: any = {}) => model.run(tokens, { ...opts, embedOverride: inputs.embedOverride });
const answer = (t: any) => JSON.stringify(model.decode(t.generated));
({ question: scene?.question, answer: answer(base), objects: scene?.objects.map((o: any) => \`\${o.colour} \${o.shape}\`) })`),
  md(`## Ablate an expert

Find the colour word in the answer, and the position just before it: that position's output *predicts* the colour. Remove, in every layer, the expert that position was routed to (\`ablateExperts\`: mode "zero" drops the expert's output for every token; "reroute" sends its tokens to the next-best expert instead) and regenerate. Then compare the next-token distributions: a small KL means the **shared expert and attention** carry most of the answer and other experts can stand in; a large one means that expert mattered.`),
  code(`const colourPos = base.tokenTexts.findIndex((t, i) => i >= base.nPrompt && /red|green|blue|yellow/.test(t));
const pos = colourPos >= 0 ? colourPos : base.tokens.length - 1;
const q = pos - 1;
const used = base.moeLayers.map((layer) => ({ layer, expert: base.routing(layer).experts[base.routing(layer).positions.indexOf(q)] }));
console.log(\`\${JSON.stringify(base.tokenTexts[pos])} is predicted at position \${q} (\${JSON.stringify(base.tokenTexts[q])}); experts used there: \${used.map((u) => \`L\${u.layer}:e\${u.expert}\`).join(" ")}\`);
const results = [];
for (const mode of ["zero", "reroute"] as const) {
  const t = await run(inputs.tokens, { maxNewTokens: 8, interventions: { ablateExperts: used.map((u) => ({ ...u, mode })) } });
  results.push({ ablation: mode, answer: answer(t) });
}
[{ ablation: "none", answer: answer(base) }, ...results]`),
  md(`The whole distribution, not just the argmax: \`compareTraces\` runs both on the same tokens and reports the KL divergence at the chosen position and the routing that changed.`),
  code(`const upTo = base.tokens.subarray(0, pos);          // the answer up to, not including, the colour word
const clean = await run(upTo, { capture: "routing" });
const ablated = await run(upTo, { capture: "routing", interventions: { ablateExperts: used } });
await compareTraces(clean, ablated, { labels: ["clean", "ablated"], model })`),
  md(`\`routingFlips\` counts, per layer, the positions whose top-1 expert changed. Ablating in one layer changes the residual stream the next layers see, so routing flips **downstream** too.`),
  code(`const flips = routingFlips(clean, ablated);
[...flips.perLayer].map(([layer, f]) => ({ layer, flipped: f.flipped, of: f.total }))`),
  md(`## Force a route

\`forceRoutes\` sends one position (or every position, \`pos: -1\`) to a chosen expert; the gate is the sigmoid of that expert's own logit (spec §2.6's rule, applied to the forced expert). Force the predicting position to each expert of each layer in turn and read the predicted colour. Which routing decisions does the answer depend on? (\`*\` marks the expert the model chose itself.)`),
  code(`const table = [];
for (const layer of base.moeLayers) {
  const own = used.find((u) => u.layer === layer)!.expert;
  const row: Record<string, string | number> = { layer };
  for (let e = 0; e < model.config.nExpert; e++) {
    const t = await run(upTo, { maxNewTokens: 1, interventions: { forceRoutes: [{ layer, pos: q, expert: e }] } });
    row[\`e\${e}\`] = model.decode(t.generated).trim() + (e === own ? "*" : "");
  }
  table.push(row);
}
table`),
  md(`Read the table against the ablations above. When every cell names the same colour, no single routing decision *at the predicting position* decides the answer: the colour reached that position through **attention from the image tokens**. The "reroute" ablation could change the answer because it re-routes those experts for *every* token, the image tokens included, which changes what attention brings in.`),
  md(`## Steer

A steering vector is a direction in the residual stream added at one layer. A simple one: the difference between the residual after layer 1 at the end of "the circle is red" and of "the circle is blue" (two text-only sentences), added at every position with growing scale. Look for the scale where the colour word changes although the image still shows a blue circle, and the scale where the text breaks down: a vector much larger than the residual stream's own variations pushes the model off anything it saw in training. (Try layer 2: added after it, the same kind of vector no longer changes the answer in TinyScout, which matches the logit lens of notebook 4, where the colour is settled by layer 2.)`),
  code(`const resid = async (s: string) => {
  const t = await model.run(s, { capture: "blocks.1.hook_resid_post" });
  return t.row("blocks.1.hook_resid_post", t.nPrompt - 1) as Float32Array;
};
const red = await resid("the circle is red"), blue = await resid("the circle is blue");
const dir = red.map((v, i) => v - blue[i]);
const steered = [];
for (const scale of [0, 0.25, 0.5, 1, 2, 4]) {
  const t = await run(inputs.tokens, { maxNewTokens: 8, interventions: scale ? { steer: [{ layer: 1, vector: dir, scale }] } : undefined });
  steered.push({ scale, answer: answer(t) });
}
steered`),
  md(`## What was done is recorded

Every trace carries the interventions it ran with, so results stay explainable when you come back to them.`),
  code(`ablated.record.interventions`),
];

NOTEBOOKS["07-bring-your-own-llama4"] = [
  md(`# 7 · Bring your own Llama 4

Everything in notebooks 1–6 works unchanged on real Llama 4 Scout (17B active, 16 experts, 109B total) and Maverick (17B active, 128 experts, 400B total): \`Model.load(path)\` takes a **GGUF file** (llama.cpp's \`llama4\` layout, any of its weight types) or a **Hugging Face folder** (safetensors + config.json + tokenizer.json). For images with a GGUF model, give the vision tower's mmproj file; an HF folder has it inside.

This notebook loads a file explicitly, plans memory with real shapes, and says what to expect on a GPU.`),
  md(`## Loading a file

The same call for both formats. Here: the tiny random-weight Llama 4 fixtures from the test suite (GGUF and HF), standing in for a multi-GB download.`),
  code(`import { Model, runWithImages, imageChat } from "moescope";
import * as path from "path";
import * as fs from "fs";
const fixtures = path.resolve("..", "tests", "fixtures", "golden", "tiny-vision");
const gguf = await Model.load(path.join(fixtures, "model.gguf"));
gguf.config.describe`),
  code(`const hf = await Model.load(path.join(fixtures, "hf"));
const p = "The quick brown fox";
const [a, b] = [await gguf.run(p, { maxNewTokens: 6 }), await hf.run(p, { maxNewTokens: 6 })];
({ gguf: Array.from(a.generated), hf: Array.from(b.generated), same: a.generated.join() === b.generated.join() })`),
  md(`Images with a GGUF model need the mmproj file (spec §5.4); with an HF folder the vision weights are found next to the text weights.`),
  code(`const img = path.join(fixtures, "img336x336.png");
const chat = imageChat([{ role: "user", content: [{ type: "image", image: img }, { type: "text", text: "What is in the image?" }] }]);
const { trace, inputs } = await runWithImages(gguf, chat.text, chat.images, { mmproj: path.join(fixtures, "mmproj.gguf"), maxNewTokens: 4 });
({ tiles: inputs.plans[0].rows * inputs.plans[0].cols, promptTokens: trace.nPrompt, patchTokens: trace.tokenTexts.filter((t) => t === "<|patch|>").length })`),
  md(`One 336-px tile is 144 patch tokens (spec §3.5: 24×24 patches, pixel shuffle 0.5 → 144), 147 with the image delimiters. A 4-tile image plus its thumbnail costs about 730 tokens.

## Memory planning with real shapes

\`moescope synth\` writes a random-weight Llama 4 with the **exact tensor shapes and weight types** of a preset (\`scout\`, \`maverick\`, …) and prints its planned size before writing a byte. We only want that line, so we stop it as soon as it appears. \`--layers N\` shrinks the depth: the difference between 1 and 2 layers is the cost of one layer.`),
  code(`import { spawn } from "child_process";
const bin = path.resolve("..", "bin", "moescope.js");
function plannedSize(preset: string, type: string, layers?: number): Promise<string> {
  const out = path.join(require("os").tmpdir(), \`plan-\${process.pid}-\${preset}-\${type}.gguf\`);
  const args = [bin, "synth", "--preset", preset, "--type", type, "--out", out, ...(layers ? ["--layers", String(layers)] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
      const m = err.match(/planned size (\\d+) bytes \\(([^)]+)\\)/);
      if (m) { child.kill(); fs.rmSync(out, { force: true }); resolve(m[2]); }
    });
    child.on("exit", () => { fs.rmSync(out, { force: true }); reject(new Error(err || "synth printed no plan")); });
  });
}
const rows = [];
for (const [preset, type] of [["scout", "Q4_K_M"], ["scout", "BF16"], ["maverick", "Q4_K_M"]]) {
  rows.push({ preset, type, "whole model": await plannedSize(preset, type), "1 layer": await plannedSize(preset, type, 1), "2 layers": await plannedSize(preset, type, 2) });
}
rows`),
  md(`Maverick alternates dense and MoE layers (spec §1.2: MoE on odd layers), so its 1-layer file has only a dense layer; the step from 1 to 2 layers is one MoE layer with 128 experts, about 10 GiB at Q4_K_M. For Scout (MoE everywhere, 16 experts) one layer is about 1.2 GiB.

What the numbers mean for a run:

- **Weights are memory-mapped**: the file's size is what must fit in RAM (CPU) or GPU memory. Scout at Q4_K_M is the laptop/workstation option; BF16 Scout and any Maverick need a big machine.
- **Only the active part is read per token**: attention, the shared expert and *one* routed expert per layer (\`model.config.activeBytesPerToken\`), about 17B parameters for both models. Decode speed is bounded by how fast those bytes stream.
- **Captures are estimated before the run** and refused above \`captureBudgetBytes\` (4 GiB by default). Attention patterns grow with tokens²: on long prompts capture \`positions: "last"\` or a few heads.`),
  md(`### The KV cache at long context

Llama 4's chunked layers attend only inside their 8192-token chunk, so their cache never holds more than one chunk; the global NoPE layers (one in four) keep every token. \`kvCacheBytes\` computes what a run allocates, for a loaded model (\`model.estimateKvCache(n)\`) or for a preset's shapes. \`kvCache: "bf16"\` (a run option) stores keys and values as bfloat16: half the memory, rounded once as they enter the cache (not exact; the default \`"f32"\` is).`),
  code(`import { kvCacheBytes, presetKvShape, synthPresets } from "moescope";
const toGiB = (b: number) => (b / 2 ** 30).toFixed(1) + " GiB";
const kvRows = [];
for (const preset of ["scout", "maverick"])
  for (const tokens of [8192, 131072, 1_000_000, 10_000_000]) {
    const shape = presetKvShape(synthPresets[preset]);
    kvRows.push({ preset, tokens, f32: toGiB(kvCacheBytes(shape, tokens, "f32")), bf16: toGiB(kvCacheBytes(shape, tokens, "bf16")),
      "bf16, no chunking": toGiB(kvCacheBytes({ ...shape, layers: shape.layers.map(() => ({ chunkedAttn: false })) }, tokens, "bf16")) });
  }
kvRows`),
  md(`Scout at 1M tokens: about 47 GiB in BF16 (12 global layers × 1M tokens × 8 KV heads × 128 × 2 × 2 bytes, plus one chunk for each of the 36 chunked layers), against 183 GiB if every layer kept every token. On one 80 GB GPU, Scout's Q4_K_M weights (~60 GiB) leave room for a few hundred thousand tokens of BF16 cache.`),
  code(`const m = gguf;
const gib = (b: number) => (b / 2 ** 30).toFixed(4) + " GiB";
({
  mapped: gib(m.config.mappedBytes),
  activePerToken: gib(m.config.activeBytesPerToken),
  "routing, 8k tokens": gib(m.estimateCapture("routing", 8192)),
  "all patterns, 8k tokens": gib(m.estimateCapture("blocks.*.attn.hook_pattern", 8192)),
  "all patterns, last row only": gib(m.estimateCapture({ names: "blocks.*.attn.hook_pattern", positions: "last" }, 8192)),
})`),
  md(`## On a GPU

\`Model.load(path, { device: "cuda" })\` (or \`"auto"\`, or \`MOESCOPE_DEVICE=cuda\` for every load) runs the same forward pass with the CUDA backend when the package was built with it (\`npm run build:cuda\`): **the same hooks, captures and interventions**, and the same numbers within float32 rounding (the CUDA test suite checks every hook against the CPU). Expect:

- Scout Q4_K_M (~60 GiB) fits one 80 GB H100; BF16 Scout (~200 GiB) and Maverick do not fit one GPU.
- Prefill is fast; decode is bounded by reading the active weights per token. See BENCHMARKS.md for measured numbers on this machine and on a GPU.
- Captures come back to the CPU: capture what you need, not \`"all"\`, on long prompts.

To point every notebook at your model, set \`MOESCOPE_MODEL=/path/to/model.gguf\` before starting Jupyter: \`Model.load()\` with no path uses it.`),
  code(`({ device: gguf.config.device, deviceName: gguf.config.deviceName, env: process.env.MOESCOPE_DEVICE ?? "(unset: cpu)" })`),
];

function toNotebook(cells) {
  return {
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
}

/** Drops the inlined plotly.js from committed outputs (see the header). */
function stripLibrary(file) {
  const nb = JSON.parse(fs.readFileSync(file, "utf8"));
  const re = /<script type="text\/javascript">\/\* plotly\.js [^*]*\(MIT\), inlined once by moescope \*\/[\s\S]*?<\/script>/g;
  for (const c of nb.cells) for (const o of c.outputs ?? []) {
    const h = o.data?.["text/html"];
    if (!h) continue;
    const s = (Array.isArray(h) ? h.join("") : h).replace(re, "");
    o.data["text/html"] = s.split("\n").map((l, j, a) => (j < a.length - 1 ? l + "\n" : l));
  }
  fs.writeFileSync(file, JSON.stringify(nb, null, 1) + "\n");
}

const only = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const names = Object.keys(NOTEBOOKS).filter((n) => !only.length || only.some((o) => n.startsWith(o)));
const files = names.map((n) => {
  const f = path.join(HERE, `${n}.ipynb`);
  fs.writeFileSync(f, JSON.stringify(toNotebook(NOTEBOOKS[n]), null, 1) + "\n");
  return f;
});
console.log(`wrote ${files.length} notebooks`);
if (!process.argv.includes("--no-run")) {
  const runner = path.join(HERE, "..", "dist", "kernel", "src", "runner", "main.js");
  const r = spawnSync(process.execPath, [runner, "--in-place", "--no-report", ...files], { stdio: "inherit" });
  files.forEach(stripLibrary);
  process.exitCode = r.status ?? 1;
}
