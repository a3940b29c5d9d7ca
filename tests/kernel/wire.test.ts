// The wire format and signing, against vectors computed by jupyter_client's Session.sign.
import { describe, expect, it } from "vitest";
import { decode, encode, Message, Signer, WireError } from "../../kernel/src/protocol/wire";

const parts = ['{"msg_id":"a"}', "{}", "{}", '{"code":"1+1"}'].map((s) => Buffer.from(s));

describe("Signer", () => {
  it("matches jupyter_client's hmac-sha256 and hmac-sha512", () => {
    expect(new Signer("secret-key").sign(parts)).toBe("712005a3ddfac00ddc4b5e88335391b3a6ee2873954746371defcd8f11725fad");
    expect(new Signer("secret-key", "hmac-sha512").sign(parts)).toBe(
      "2c8bb58060a5e78b8310292946a0789c6e7bb86eaa8425ffacd2523ff1a054015555a140b539de6763331cf0eb6298bbfb80478d72f2f4af6cd36f74d460fc2b",
    );
  });
  it("verifies, rejects wrong or truncated signatures, and treats an empty key as unsigned", () => {
    const s = new Signer("secret-key");
    const sig = Buffer.from(s.sign(parts));
    expect(s.verify(sig, parts)).toBe(true);
    expect(s.verify(Buffer.from(sig.toString().replace(/^7/, "8")), parts)).toBe(false);
    expect(s.verify(sig.subarray(0, 10), parts)).toBe(false);
    expect(new Signer("").sign(parts)).toBe("");
    expect(new Signer("").verify(Buffer.alloc(0), parts)).toBe(true);
  });
  it("refuses unknown schemes", () => {
    expect(() => new Signer("k", "hmac-md5")).toThrow(WireError);
  });
});

function sample(): Message {
  return {
    identities: [Buffer.from("id1"), Buffer.from("id2")],
    header: { msg_id: "m", session: "s", username: "u", date: "2026-01-01T00:00:00Z", msg_type: "comm_msg", version: "5.3" },
    parent_header: {},
    metadata: { k: 1 },
    content: { comm_id: "c", data: { x: "é" } },
    buffers: [Buffer.from([0, 1, 255]), Buffer.alloc(0)],
  };
}

describe("encode/decode", () => {
  const signer = new Signer("key");
  it("round-trips identities, JSON frames and raw binary buffers", () => {
    const frames = encode(sample(), signer);
    expect(frames[2].toString()).toBe("<IDS|MSG>");
    const back = decode(frames, signer);
    expect(back.identities.map(String)).toEqual(["id1", "id2"]);
    expect(back.header.msg_type).toBe("comm_msg");
    expect(back.content).toEqual({ comm_id: "c", data: { x: "é" } });
    expect(back.buffers.map((b) => [...b])).toEqual([[0, 1, 255], []]);
  });
  it("accepts no identities at all", () => {
    const m = sample();
    m.identities = [];
    expect(decode(encode(m, signer), signer).identities).toEqual([]);
  });
  it("rejects bad signatures, missing delimiters, short messages, bad JSON and headers without msg_type", () => {
    const frames = encode(sample(), signer);
    expect(() => decode(frames, new Signer("other"))).toThrow(/bad signature/);
    expect(() => decode(frames.filter((f) => f.toString() !== "<IDS|MSG>"), signer)).toThrow(/delimiter/);
    expect(() => decode(frames.slice(0, 5), signer)).toThrow(/too few frames/);
    const body = [Buffer.from("{"), Buffer.from("{}"), Buffer.from("{}"), Buffer.from("{}")];
    expect(() => decode([Buffer.from("<IDS|MSG>"), Buffer.from(signer.sign(body)), ...body], signer)).toThrow(/header is not valid JSON/);
    const noType = [Buffer.from('{"msg_id":"x"}'), Buffer.from("{}"), Buffer.from("{}"), Buffer.from("{}")];
    expect(() => decode([Buffer.from("<IDS|MSG>"), Buffer.from(signer.sign(noType)), ...noType], signer)).toThrow(/msg_type/);
    const arr = [Buffer.from("[1]"), Buffer.from("{}"), Buffer.from("{}"), Buffer.from("{}")];
    expect(() => decode([Buffer.from("<IDS|MSG>"), Buffer.from(signer.sign(arr)), ...arr], signer)).toThrow(/not a JSON object/);
  });
});
