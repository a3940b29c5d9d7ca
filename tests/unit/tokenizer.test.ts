// The native Llama 4 tokenizer (native/src/tokenizer, exported as addon.Tokenizer / addon.Utf8Stream).
// Contract checked here: llama.cpp's golden tokenisation of every tiny-scout prompt; an independent
// Hugging Face-semantics reference on hard strings; exact byte round trips (including invalid UTF-8);
// special-token and BOS switches; streamed decoding; no crash on random input; and every malformed
// tokenizer.json rejected with a coded Error that names the file.
// Fixtures come from tests/fixtures/tokenizer (rebuilt by its make-fixtures.py).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon = require(path.resolve(__dirname, "../../build/Release/moescope.node"));
const FIX = path.resolve(__dirname, "../fixtures/tokenizer");
const TOKENIZER_JSON = path.join(FIX, "tiny-scout/tokenizer.json");

interface Tokenizer {
  encode(text: string | Uint8Array, addBos?: boolean, parseSpecial?: boolean): Int32Array;
  decode(ids: Int32Array | number[]): string;
  decodeBytes(ids: Int32Array | number[]): Buffer;
  tokenBytes(id: number): Buffer;
  tokenId(text: string): number;
  isEog(id: number): boolean;
  vocabSize: number;
  bosId: number;
  eosId: number;
  padId: number;
  addBos: boolean;
  eogIds: number[];
}

const load = (p: string): Tokenizer => addon.Tokenizer.fromHF(p);
const readJson = (p: string) => JSON.parse(fs.readFileSync(p, "utf8"));

// Deterministic PRNG (mulberry32) so the fuzz cases are the same on every run.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let tok: Tokenizer;
beforeAll(() => {
  tok = load(TOKENIZER_JSON);
});

describe("golden tokens (llama.cpp, BOS + specials)", () => {
  const goldens: Record<string, number[]> = readJson(path.join(FIX, "golden-tokens.json"));
  for (const name of Object.keys(goldens)) {
    it(name, () => {
      const text = fs.readFileSync(path.join(FIX, "prompts", `${name}.txt`), "utf8");
      expect(Array.from(tok.encode(text, true, true))).toEqual(goldens[name]);
      expect(tok.decode(tok.encode(text, false, true))).toBe(text);
    });
  }

  it("covers the five prompts, p_long being 8176 tokens", () => {
    expect(Object.keys(goldens).sort()).toEqual(["p1", "p2", "p3", "p4", "p_long"]);
    expect(goldens.p_long.length).toBe(8176);
  });
});

describe("Hugging Face reference on hard strings", () => {
  const cases: { text: string; ids: number[] }[] = readJson(path.join(FIX, "reference-cases.json"));
  it(`matches all ${cases.length} cases`, () => {
    const bad = cases.filter((c) => JSON.stringify(Array.from(tok.encode(c.text, false, false))) !== JSON.stringify(c.ids));
    expect(bad.slice(0, 3)).toEqual([]);
  });
});

describe("vocabulary facts", () => {
  it("reads ids by name from the file", () => {
    expect(tok.vocabSize).toBe(675);
    expect(tok.bosId).toBe(656);
    expect(tok.eosId).toBe(664); // tokenizer_config.json: <|eot|>
    expect(tok.padId).toBe(668);
    expect(tok.addBos).toBe(true);
    expect(tok.eogIds).toEqual([657, 663, 664]);
    expect(tok.isEog(664) && tok.isEog(657) && tok.isEog(663)).toBe(true);
    expect(tok.isEog(656) || tok.isEog(-1) || tok.isEog(1e6)).toBe(false);
  });

  it("maps token text and bytes", () => {
    expect(tok.tokenId("<|header_start|>")).toBe(661);
    expect(tok.tokenId("Ġt")).toBe(257);
    expect(tok.tokenId("no such token")).toBe(-1);
    expect(tok.tokenBytes(257).toString("latin1")).toBe(" t");
    expect(tok.tokenBytes(661).toString()).toBe("<|header_start|>");
    for (let b = 0; b < 256; b++) expect(tok.tokenBytes(tok.encode(Buffer.from([b]), false, false)[0])).toEqual(Buffer.from([b]));
  });

  it("rejects bad ids with a coded error", () => {
    for (const bad of [-1, 675, 2 ** 31 - 1]) {
      expect(() => tok.tokenBytes(bad)).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ID" }));
      expect(() => tok.decode([1, bad])).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ID" }));
    }
    expect(() => tok.tokenBytes(NaN)).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
    expect(() => tok.decode([1.5])).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
    expect(() => tok.decode("12" as unknown as number[])).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
    expect(() => tok.encode(42 as unknown as string)).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
    expect(() => new addon.Tokenizer()).toThrow(/fromHF/);
  });
});

describe("special tokens and BOS", () => {
  it("parses special tokens only when asked", () => {
    const text = "<|header_start|>user<|header_end|>\n\nhi<|eot|>";
    const on = Array.from(tok.encode(text, false, true));
    expect(on[0]).toBe(661);
    expect(on).toContain(662);
    expect(on[on.length - 1]).toBe(664);
    const off = Array.from(tok.encode(text, false, false));
    expect(off.some((id) => id >= 656)).toBe(false);
    expect(tok.decode(off)).toBe(text);
    expect(tok.decode(on)).toBe(text);
  });

  it("matches adjacent, embedded and unfinished specials correctly", () => {
    expect(Array.from(tok.encode("<|eot|><|eot|>", false, true))).toEqual([664, 664]);
    const embedded = Array.from(tok.encode("ab<|eom|>cd", false, true));
    expect(embedded).toContain(663);
    expect(tok.decode(embedded)).toBe("ab<|eom|>cd");
    expect(Array.from(tok.encode("<|eot|", false, true)).some((id) => id >= 656)).toBe(false);
    expect(Array.from(tok.encode("<<|eot|>>", false, true))).toContain(664);
  });

  it("adds BOS on request, by default per the post-processor", () => {
    expect(tok.encode("hi", true, true)[0]).toBe(656);
    expect(tok.encode("hi", false, true)[0]).not.toBe(656);
    expect(tok.encode("hi")[0]).toBe(656);
    expect(Array.from(tok.encode("", true))).toEqual([656]);
    expect(Array.from(tok.encode("", false))).toEqual([]);
    expect(tok.decode(tok.encode("hi", true))).toBe("<|begin_of_text|>hi");
  });
});

describe("round trips", () => {
  const samples = [
    "e\u0301 a\u0308\u0304 Z\u0351\u0334\u0335\u0336a\u035b\u0300l\u0352go",
    "日本語のテキストと中文，한국어",
    "family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 skin 👍🏽 keycap 1️⃣",
    "עברית \u200fמימין\u200e ועברית, العربية ١٢٣ فارسی",
    "हिन्दी ไทย ქართული Ελληνικά ΣΊΣΥΦΟΣ İstanbul ıi",
    "tabs\tand\r\nCRLF\r\n\r\n\n  \u00a0\u2028\u3000 spaces  ",
    "digits 1234567890 ½ Ⅻ ²³ 3.14159",
    "He's I'LL we'Re they've I'm you'd it'S don'T ſ'ſ",
    "a".repeat(5000) + " " + "🙂".repeat(1000),
    "\u0000\u0001\u001c\u007f\ufeff\u200b\uffff",
    "",
  ];
  for (const [i, s] of samples.entries()) {
    it(`sample ${i}`, () => {
      for (const special of [false, true]) {
        const ids = tok.encode(s, false, special);
        expect(tok.decode(ids)).toBe(s);
        expect(ids.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
      }
    });
  }

  it("keeps invalid UTF-8 bytes exactly (decodeBytes) and shows them as U+FFFD (decode)", () => {
    const bad = [
      [0xff],
      [0x61, 0xc0, 0x80, 0x62],
      [0x80, 0x80],
      [0xe6, 0x97],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0x20, 0xf0, 0x9f, 0x99],
      [0x27, 0x73, 0xfe, 0x0a],
    ];
    for (const bytes of bad) {
      const buf = Buffer.from(bytes);
      const ids = tok.encode(buf, false, false);
      expect(tok.decodeBytes(ids)).toEqual(buf);
      expect(tok.decode(ids)).toBe(buf.toString("utf8")); // same U+FFFD rule as Node
    }
  });
});

describe("long inputs", () => {
  it("tokenises a text above the 64 KiB pre-tokenizer chunk like its parts", () => {
    // "\nX" is a boundary no context can move, so the parts must tokenise independently; the
    // chunked pre-tokenizer cuts the 90 KiB text at some other such boundary inside a part.
    const part = "X" + fs.readFileSync(path.join(FIX, "prompts/p_long.txt"), "utf8") + "\n";
    const whole = Array.from(tok.encode(part.repeat(4), false, false));
    const one = Array.from(tok.encode(part, false, false));
    expect(whole).toEqual([...one, ...one, ...one, ...one]);
  });

  it("handles one huge piece (a 1 MB word, a 1 MB space run)", () => {
    for (const s of ["ab".repeat(500_000), " ".repeat(1_000_000) + "x", "e" + "\u0301".repeat(200_000)]) {
      expect(tok.decode(tok.encode(s, false, false))).toBe(s);
    }
  });
});

describe("Utf8Stream", () => {
  it("never splits a character across token boundaries", () => {
    const text = "🙂日本é ok 👨‍👩‍👧";
    const ids = Array.from(tok.encode(text, false, false));
    expect(ids.length).toBeGreaterThan(10); // tiny vocab: multi-byte characters are several tokens
    const s = new addon.Utf8Stream();
    const parts = ids.map((id) => s.push(tok.tokenBytes(id)) as string);
    parts.push(s.flush());
    expect(parts.join("")).toBe(text);
    for (const p of parts) expect(p).not.toContain("\ufffd");
  });

  it("handles every split point and flushes leftovers as U+FFFD", () => {
    const buf = Buffer.from("a🙂b日c");
    for (let cut = 0; cut <= buf.length; cut++) {
      const s = new addon.Utf8Stream();
      expect(s.push(buf.subarray(0, cut)) + s.push(buf.subarray(cut)) + s.flush()).toBe("a🙂b日c");
    }
    const s = new addon.Utf8Stream();
    expect(s.push(Buffer.from([0x41, 0xf0, 0x9f]))).toBe("A");
    expect(s.flush()).toBe("\ufffd");
    expect(s.push(Buffer.from([0xff, 0x42]))).toBe("\ufffdB");
  });
});

describe("fuzz (fixed seed)", () => {
  const pool = [
    ..."abzAZ09 \t\r\n'./,!?<|>-_",
    "'s", "'LL", "<|eot|>", "<|header_start|>", "é", "É", "ß", "ǅ", "ʰ", "日", "ا", "\u0301", "\u0903",
    "²", "Ⅻ", "٣", "\u00a0", "\u2028", "\u3000", "\u0085", "ſ", "🙂", "👍🏽", "\u200d", "\ufeff",
  ];

  it("round-trips 3000 random strings", () => {
    const r = rng(12345);
    for (let n = 0; n < 3000; n++) {
      let s = "";
      const len = Math.floor(r() * 40);
      for (let i = 0; i < len; i++) {
        s += r() < 0.8 ? pool[Math.floor(r() * pool.length)] : String.fromCodePoint(Math.floor(r() * 0xd800));
      }
      const special = r() < 0.5;
      const ids = tok.encode(s, special, special);
      expect(tok.decode(special ? ids.subarray(1) : ids)).toBe(s);
    }
  });

  it("never crashes on 3000 random byte strings and keeps their bytes", () => {
    const r = rng(777);
    for (let n = 0; n < 3000; n++) {
      const buf = Buffer.alloc(Math.floor(r() * 64));
      for (let i = 0; i < buf.length; i++) buf[i] = r() < 0.5 ? Math.floor(r() * 256) : 0x80 + Math.floor(r() * 0x40);
      const ids = tok.encode(buf, false, r() < 0.5);
      expect(tok.decodeBytes(ids)).toEqual(buf);
      expect(typeof tok.decode(ids)).toBe("string");
    }
  });
});

describe("speed", () => {
  it("encodes p_long fast", () => {
    const text = fs.readFileSync(path.join(FIX, "prompts/p_long.txt"), "utf8");
    const reps = 20;
    const t0 = process.hrtime.bigint();
    let n = 0;
    for (let i = 0; i < reps; i++) n += tok.encode(text, true, true).length;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`tokenizer: p_long ${n / reps} tokens, ${(n / s / 1e6).toFixed(2)} M tokens/s`);
    expect(n / s).toBeGreaterThan(2e5); // loose: the CI machine is shared
  });
});

describe("GGUF-style spec (token types instead of special ids)", () => {
  // The tiny vocabulary as a GGUF file carries it: tokens by id, types 1 normal / 3 control, merges.
  function ggufSpec(): Record<string, unknown> {
    const j = readJson(TOKENIZER_JSON);
    const tokens: string[] = [];
    for (const [text, id] of Object.entries(j.model.vocab as Record<string, number>)) tokens[id] = text;
    const types = tokens.map(() => 1);
    for (const a of j.added_tokens) {
      tokens[a.id] = a.content;
      types[a.id] = 3;
    }
    return { source: "tiny.gguf", tokens, tokenTypes: types, merges: j.model.merges, bosId: 656, eosId: 664, eogIds: [657, 663, 664] };
  }

  it("tokenises the goldens like the HF file", () => {
    const t: Tokenizer = addon.Tokenizer._fromSpec(ggufSpec());
    const goldens: Record<string, number[]> = readJson(path.join(FIX, "golden-tokens.json"));
    for (const name of Object.keys(goldens)) {
      const text = fs.readFileSync(path.join(FIX, "prompts", `${name}.txt`), "utf8");
      expect(Array.from(t.encode(text, true, true))).toEqual(goldens[name]);
    }
    expect(t.tokenBytes(661).toString()).toBe("<|header_start|>");
    expect(Array.from(t.encode("<|eot|>", false, false)).includes(664)).toBe(false);
  });

  it("treats user-defined tokens (type 4) as always matched", () => {
    const spec = ggufSpec();
    (spec.tokens as string[]).push("quick brown");
    (spec.tokenTypes as number[]).push(4);
    const t: Tokenizer = addon.Tokenizer._fromSpec(spec);
    expect(Array.from(t.encode("the quick brown fox", false, false))).toContain(675);
    expect(t.decode(t.encode("the quick brown fox", false, false))).toBe("the quick brown fox");
  });

  it("rejects inconsistent specs naming the source", () => {
    const bad = (patch: Record<string, unknown>, code: string) => {
      expect(() => addon.Tokenizer._fromSpec({ ...ggufSpec(), ...patch })).toThrow(
        expect.objectContaining({ code, message: expect.stringContaining("tiny.gguf") }),
      );
    };
    bad({ pre: "llama-bpe" }, "TOKENIZER_UNSUPPORTED");
    bad({ model: "llama" }, "TOKENIZER_UNSUPPORTED");
    bad({ tokens: [] }, "TOKENIZER_BAD_VOCAB");
    bad({ tokenTypes: [1, 1] }, "TOKENIZER_BAD_VOCAB");
    bad({ bosId: 675 }, "TOKENIZER_BAD_ID");
    bad({ eogIds: [-1] }, "TOKENIZER_BAD_ID");
    bad({ specialIds: [1e6] }, "TOKENIZER_BAD_ID");
    bad({ merges: ["Ġ"] }, "TOKENIZER_BAD_MERGE");
    expect(() => addon.Tokenizer._fromSpec({ tokens: "abc" })).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
    expect(() => addon.Tokenizer._fromSpec({ tokens: [], bosId: 0.5 })).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
  });
});

describe("hostile tokenizer.json", () => {
  let dir: string;
  const base = () => JSON.parse(fs.readFileSync(TOKENIZER_JSON, "utf8"));
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "moescope-tok-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Writes the case into its own folder (no tokenizer_config.json beside it) and loads it.
  function expectRejected(name: string, content: string | object, code: string | RegExp) {
    const sub = path.join(dir, name);
    fs.mkdirSync(sub, { recursive: true });
    const file = path.join(sub, "tokenizer.json");
    fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
    let err: { code?: string; message?: string } | undefined;
    try {
      load(file);
    } catch (e) {
      err = e as { code?: string; message?: string };
    }
    expect(err, name).toBeInstanceOf(Error);
    expect(err!.code, `${name}: ${err!.message}`).toMatch(code);
    expect(err!.message).toContain(file);
  }

  const mutated = (f: (j: any) => void) => {
    const j = base();
    f(j);
    return j;
  };

  it("loads the unmodified copy without tokenizer_config.json", () => {
    const sub = path.join(dir, "ok");
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, "tokenizer.json"), JSON.stringify(base()));
    const t = load(path.join(sub, "tokenizer.json"));
    expect(t.eosId).toBe(664); // by name, <|eot|>
    expect(t.addBos).toBe(true); // from the TemplateProcessing post-processor
  });

  it("accepts merges written as pairs", () => {
    const sub = path.join(dir, "pairs");
    fs.mkdirSync(sub, { recursive: true });
    const j = mutated((j) => (j.model.merges = j.model.merges.map((m: string) => m.split(" "))));
    fs.writeFileSync(path.join(sub, "tokenizer.json"), JSON.stringify(j));
    const text = fs.readFileSync(path.join(FIX, "prompts/p2.txt"), "utf8");
    expect(Array.from(load(path.join(sub, "tokenizer.json")).encode(text))).toEqual(Array.from(tok.encode(text, true, true)));
  });

  it("always matches non-special added tokens (user-defined), as HF and llama.cpp do", () => {
    const sub = path.join(dir, "user-defined");
    fs.mkdirSync(sub, { recursive: true });
    const j = mutated((j) => j.added_tokens.push({ id: 675, content: "fox jumps", special: false }));
    fs.writeFileSync(path.join(sub, "tokenizer.json"), JSON.stringify(j));
    const t = load(path.join(sub, "tokenizer.json"));
    for (const special of [false, true]) {
      const ids = Array.from(t.encode("a fox jumps<|eot|>", false, special));
      expect(ids).toContain(675);
      expect(ids.includes(664)).toBe(special);
      expect(t.decode(ids)).toBe("a fox jumps<|eot|>");
    }
  });

  it("rejects files it cannot read", () => {
    expect(() => load(path.join(dir, "missing/tokenizer.json"))).toThrow(expect.objectContaining({ code: "TOKENIZER_READ" }));
    expect(() => addon.Tokenizer.fromHF(42)).toThrow(expect.objectContaining({ code: "TOKENIZER_BAD_ARGUMENT" }));
  });

  it("rejects malformed JSON", () => {
    expectRejected("empty", "", /JSON/);
    expectRejected("truncated", fs.readFileSync(TOKENIZER_JSON, "utf8").slice(0, 5000), /JSON/);
    expectRejected("garbage", "\u0000\u00ff{]", /JSON/);
    expectRejected("deep", "[".repeat(100000), /JSON/);
  });

  it("rejects wrong shapes", () => {
    expectRejected("array", [1, 2, 3], "TOKENIZER_JSON_SHAPE");
    expectRejected("no-model", mutated((j) => delete j.model), "TOKENIZER_JSON_SHAPE");
    expectRejected("model-string", mutated((j) => (j.model = "BPE")), "TOKENIZER_JSON_SHAPE");
    expectRejected("no-vocab", mutated((j) => delete j.model.vocab), "TOKENIZER_JSON_SHAPE");
    expectRejected("vocab-array", mutated((j) => (j.model.vocab = [1])), "TOKENIZER_JSON_SHAPE");
    expectRejected("merges-object", mutated((j) => (j.model.merges = {})), "TOKENIZER_JSON_SHAPE");
    expectRejected("merge-number", mutated((j) => (j.model.merges[3] = 7)), "TOKENIZER_JSON_SHAPE");
    expectRejected("merge-triple", mutated((j) => (j.model.merges[3] = ["a", "b", "c"])), "TOKENIZER_JSON_SHAPE");
    expectRejected("added-object", mutated((j) => (j.added_tokens = {})), "TOKENIZER_JSON_SHAPE");
    expectRejected("added-no-content", mutated((j) => delete j.added_tokens[0].content), "TOKENIZER_JSON_SHAPE");
  });

  it("rejects bad and huge ids", () => {
    expectRejected("id-string", mutated((j) => (j.model.vocab.a = "97")), "TOKENIZER_BAD_ID");
    expectRejected("id-negative", mutated((j) => (j.model.vocab.a = -1)), "TOKENIZER_BAD_ID");
    expectRejected("id-fraction", mutated((j) => (j.model.vocab.a = 1.5)), "TOKENIZER_BAD_ID");
    expectRejected("id-huge", mutated((j) => (j.model.vocab.a = 1e12)), "TOKENIZER_BAD_ID");
    expectRejected("id-sparse", mutated((j) => (j.added_tokens[0].id = 10_000_000)), "TOKENIZER_BAD_ID");
    expectRejected("id-int32", mutated((j) => (j.added_tokens[0].id = 2 ** 31)), "TOKENIZER_BAD_ID");
    expectRejected("id-clash", mutated((j) => (j.model.vocab.a = j.model.vocab.b)), "TOKENIZER_BAD_ID");
  });

  it("rejects merges over unknown tokens and incomplete byte sets", () => {
    expectRejected("merge-unknown", mutated((j) => j.model.merges.push("zzz qqq")), "TOKENIZER_BAD_MERGE");
    expectRejected("merge-no-result", mutated((j) => j.model.merges.push("a ĠĠ")), "TOKENIZER_BAD_MERGE");
    expectRejected("merge-one-part", mutated((j) => (j.model.merges[0] = "ĠĠ")), "TOKENIZER_BAD_MERGE");
    expectRejected("merge-spaces", mutated((j) => (j.model.merges[0] = "Ġ Ġ Ġ")), "TOKENIZER_BAD_MERGE");
    expectRejected("missing-byte", mutated((j) => delete j.model.vocab["Ā"]), "TOKENIZER_BAD_VOCAB");
  });

  it("rejects tokenizers it would get wrong", () => {
    expectRejected("wordpiece", mutated((j) => (j.model.type = "WordPiece")), "TOKENIZER_UNSUPPORTED");
    expectRejected("no-pre", mutated((j) => (j.pre_tokenizer = null)), "TOKENIZER_UNSUPPORTED");
    expectRejected(
      "gpt2-pre",
      mutated((j) => (j.pre_tokenizer.pretokenizers[0].pattern.Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+")),
      "TOKENIZER_UNSUPPORTED",
    );
  });

  it("names tokenizer_config.json when that file is the broken one", () => {
    const sub = path.join(dir, "bad-config");
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, "tokenizer.json"), JSON.stringify(base()));
    fs.writeFileSync(path.join(sub, "tokenizer_config.json"), "{ not json");
    expect(() => load(path.join(sub, "tokenizer.json"))).toThrow(/tokenizer_config\.json/);
  });
});
