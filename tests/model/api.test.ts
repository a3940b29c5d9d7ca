/**
 * The Model API's promises: cancellation stops a long run promptly and leaves the model usable,
 * progress is reported, streaming text is multi-byte safe, the chat template matches Llama 4's format,
 * and the JS thread stays free while the engine works.
 */
import { describe, expect, it } from "vitest";
import { Model, nativeSpin } from "../../engine/src/model";
import { CancelledError } from "../../engine/src/errors";
import { setAmbientSignal } from "../../engine/src/cancel";
import { fixture, golden, prompt, sameInts } from "../helpers";

describe("Model API", () => {
  it("an AbortSignal stops a long prefill within 500 ms; the model still works afterwards", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    const tokens = m.tokenize(prompt("p_long"));
    const ac = new AbortController();
    const started = Date.now();
    let abortedAt = 0;
    setTimeout(() => ((abortedAt = Date.now()), ac.abort()), 300);
    const err = await m.run(tokens, { signal: ac.signal, maxNewTokens: 8 }).catch((e) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(Date.now() - abortedAt).toBeLessThan(500);
    expect(abortedAt - started).toBeGreaterThanOrEqual(250);
    const again = await m.run(m.tokenize(prompt("p1")), { maxNewTokens: 16, stopAtEog: false });
    sameInts("greedy after a cancel", again.generated, golden("tiny-scout", "golden-p1").get("greedy")!.data);
  });

  it("follows the ambient signal a host (the kernel) sets when a call has none", async () => {
    const ac = new AbortController();
    setAmbientSignal(ac.signal);
    try {
      const p = nativeSpin(5000);
      setTimeout(() => ac.abort(), 100);
      const t0 = Date.now();
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      expect(Date.now() - t0).toBeLessThan(600);
    } finally {
      setAmbientSignal(undefined);
    }
  });

  it("keeps the JS thread free while native work runs", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await nativeSpin(400);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(20);
  });

  it("reports progress and streams tokens; decoded text is the concatenation of the stream", async () => {
    const m = await Model.load(fixture("tiny-maverick", "model.gguf"));
    const phases: string[] = [];
    let text = "";
    const ids: number[] = [];
    const r = await m.generate("Ünïcödé — naïve café, 東京 🙂", {
      maxNewTokens: 40, temperature: 1, seed: 3, stopAtEog: false,
      onProgress: (p) => phases.push(`${p.phase}:${p.done}/${p.total}`),
      onToken: (t) => { text += t.text; ids.push(t.id); },
    });
    expect(phases[0]).toMatch(/^prefill:0\//);
    expect(phases).toContain("decode:40/40");
    expect(ids).toEqual(Array.from(r.tokens));
    // The streamed text only ever holds whole characters: it is a prefix of the full decode.
    expect(r.text.startsWith(text)).toBe(true);
    expect(text.includes("\uFFFD") && !r.text.includes("\uFFFD")).toBe(false);
  });

  it("the chat template gives Llama 4's turn format (golden p4's tokens)", async () => {
    const m = await Model.load(fixture("tiny-scout", "hf"));
    const text = "<|begin_of_text|>" + m.chat([{ role: "user", content: "Describe the image." }]);
    sameInts("p4", m.tokenize(text, { bos: false }), golden("tiny-scout", "golden-p4").get("tokens")!.data);
    expect(m.chat([{ role: "system", content: "  Be brief. " }, { role: "user", content: [{ type: "text", text: "Hi " }, { type: "image" }] }], { addGenerationPrompt: false }))
      .toBe("<|header_start|>system<|header_end|>\n\nBe brief.<|eot|><|header_start|>user<|header_end|>\n\nHi <|image|><|eot|>");
  });

  it("stops at an end-of-generation token unless told not to", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"));
    // golden-p3's greedy continuation emits <|end_of_text|> (657) as its third token.
    const t = m.tokenize(prompt("p3"));
    const stop = await m.run(t, { maxNewTokens: 16 });
    expect(Array.from(stop.generated)).toEqual([193, 251, 657]);
    expect(stop.stopReason).toBe("eog");
    expect(m.config.eogIds).toContain(657);
  });
});

describe("concurrency", () => {
  it("runs started at once (Promise.all) give the same results as one after the other", async () => {
    const m = await Model.load(fixture("tiny-maverick", "model.gguf"));
    const a = m.tokenize(prompt("p2")), b = m.tokenize(prompt("p3"));
    const [x, y] = await Promise.all([m.run(a, { maxNewTokens: 16, stopAtEog: false }), m.run(b, { maxNewTokens: 16, stopAtEog: false })]);
    sameInts("p2", x.generated, golden("tiny-maverick", "golden-p2").get("greedy")!.data);
    sameInts("p3", y.generated, golden("tiny-maverick", "golden-p3").get("greedy")!.data);
  });
});

describe("threads", () => {
  it("changing the thread count applies to models already loaded (and they keep working)", async () => {
    const m = await Model.load(fixture("tiny-scout", "model.gguf"), { threads: 1 });
    const a = await m.run(m.tokenize(prompt("p1")), { maxNewTokens: 16, stopAtEog: false });
    await Model.load(fixture("tiny-scout", "model.gguf"), { threads: 2 });
    const b = await m.run(m.tokenize(prompt("p1")), { maxNewTokens: 16, stopAtEog: false });
    sameInts("same greedy with 1 and 2 threads", a.generated, b.generated);
  });
});

describe("progress display", () => {
  it("inside a kernel, long runs show a progress line updated in place", async () => {
    const { setFrontend } = await import("../../engine/src/display");
    const shown: { id: string; update: boolean; text: string }[] = [];
    setFrontend({
      display: (b, o) => shown.push({ id: o.displayId, update: o.update, text: String(b.data["text/plain"]) }),
      clearOutput: () => {}, commOpen: () => {}, commMsg: () => {}, commClose: () => {},
    });
    try {
      const m = await Model.load(fixture("tiny-scout", "model.gguf"));
      await m.run(m.tokenize(prompt("p1")), { maxNewTokens: 40, stopAtEog: false });
      const gen = shown.filter((s) => s.text.startsWith("generating"));
      expect(gen[0].update).toBe(false);
      expect(gen.slice(1).every((s) => s.update && s.id === gen[0].id)).toBe(true);
      expect(gen[gen.length - 1].text).toMatch(/^generating: 40\/40 tokens, [\d.]+ tokens\/s, .* \(done\)$/);
      shown.length = 0;
      await m.run(m.tokenize(prompt("p1")), { maxNewTokens: 4 });
      expect(shown).toEqual([]); // short runs stay quiet
    } finally {
      setFrontend(undefined);
    }
  });
});
