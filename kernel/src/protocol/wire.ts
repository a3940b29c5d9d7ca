/**
 * The Jupyter wire format, pure: turns the zeromq frames of one message into a parsed message and
 * back, and signs/verifies with HMAC (protocol 5.x, "Wire protocol" section of the messaging spec).
 *
 * Frames: [identities..., "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...].
 * The signature is the hex HMAC of the four JSON frames, in that order; an empty key means
 * "unsigned" and the signature frame is empty. Verification is constant-time (timingSafeEqual), and a
 * message that fails it is never parsed further: callers drop it.
 */
import { createHmac, timingSafeEqual } from "crypto";

export const DELIMITER = "<IDS|MSG>";

export interface Header {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
  [key: string]: unknown;
}

export interface Message {
  identities: Buffer[];
  header: Header;
  parent_header: Partial<Header> & Record<string, unknown>;
  metadata: Record<string, unknown>;
  content: Record<string, any>;
  buffers: Buffer[];
}

/** Why a message was refused; the caller logs it and drops the message. */
export class WireError extends Error {
  override name = "WireError";
}

export class Signer {
  private readonly key: Buffer;
  constructor(key: string, private readonly scheme = "hmac-sha256") {
    this.key = Buffer.from(key, "utf8");
    const algo = scheme.replace(/^hmac-/, "");
    if (!/^sha(1|224|256|384|512)$/.test(algo)) throw new WireError(`unsupported signature scheme ${scheme}`);
  }
  get enabled(): boolean {
    return this.key.length > 0;
  }
  sign(frames: Buffer[]): string {
    if (!this.enabled) return "";
    const h = createHmac(this.scheme.replace(/^hmac-/, ""), this.key);
    for (const f of frames) h.update(f);
    return h.digest("hex");
  }
  verify(signature: Buffer, frames: Buffer[]): boolean {
    if (!this.enabled) return true;
    const expected = Buffer.from(this.sign(frames), "ascii");
    // timingSafeEqual needs equal lengths; a length mismatch is already a mismatch.
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
}

function parseJson(frame: Buffer, what: string): any {
  let v: unknown;
  try {
    v = JSON.parse(frame.toString("utf8"));
  } catch (e) {
    throw new WireError(`${what} is not valid JSON`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new WireError(`${what} is not a JSON object`);
  return v;
}

/** Parses received frames; throws WireError for anything malformed or badly signed. */
export function decode(frames: Buffer[], signer: Signer): Message {
  const at = frames.findIndex((f) => f.length === DELIMITER.length && f.toString("ascii") === DELIMITER);
  if (at < 0) throw new WireError("no <IDS|MSG> delimiter");
  if (frames.length < at + 6) throw new WireError(`too few frames (${frames.length - at - 1} after the delimiter, need 5)`);
  const signature = frames[at + 1];
  const body = frames.slice(at + 2, at + 6);
  if (!signer.verify(signature, body)) throw new WireError("bad signature");
  const header = parseJson(body[0], "header") as Header;
  if (typeof header.msg_type !== "string" || typeof header.msg_id !== "string") {
    throw new WireError("header lacks msg_type or msg_id");
  }
  return {
    identities: frames.slice(0, at),
    header,
    parent_header: parseJson(body[1], "parent_header"),
    metadata: parseJson(body[2], "metadata"),
    content: parseJson(body[3], "content"),
    buffers: frames.slice(at + 6),
  };
}

/** Serialises a message; binary buffers travel as raw frames, never as JSON. */
export function encode(msg: Message, signer: Signer): Buffer[] {
  const body = [msg.header, msg.parent_header, msg.metadata, msg.content].map((o) => Buffer.from(JSON.stringify(o), "utf8"));
  return [...msg.identities, Buffer.from(DELIMITER, "ascii"), Buffer.from(signer.sign(body), "ascii"), ...body, ...msg.buffers];
}
