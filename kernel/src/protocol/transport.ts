/**
 * How the kernel server talks to clients, without knowing about sockets: `ZmqTransport` (the real
 * one, sockets in an I/O worker) and `MemoryTransport` (for unit tests, records everything sent).
 */
import type { Header, Message } from "./wire";
import type { Channel } from "./channel-messages";

export type RequestChannel = "shell" | "control";

export interface SendOptions {
  metadata?: Record<string, unknown>;
  buffers?: Uint8Array[];
}

export interface Transport {
  /** Starts receiving; resolves once the transport is ready. */
  start(onRequest: (channel: RequestChannel, msg: Message) => void): Promise<void>;
  /** Sends a message; `parent` is the request it answers (its identities route shell/control replies). */
  send(channel: Channel, msgType: string, content: object, parent: Message | undefined, opts?: SendOptions): void;
  /** Stream text, batched by the transport; always delivered before anything sent after it. */
  stream(name: "stdout" | "stderr", text: string, parent: Message | undefined): void;
  /** The request that output not written through `stream` (native fd 1/2) belongs to from now on. */
  outputParent(parent: Message | undefined): void;
  /** Resolves once every request received so far has been handed to `onRequest`. */
  barrier(): Promise<void>;
  /** Flushes and closes, synchronously (it runs from process "exit" too). */
  close(): void;
}

export interface Sent {
  channel: Channel;
  msgType: string;
  content: any;
  parent?: Header;
  metadata: Record<string, unknown>;
  buffers: Uint8Array[];
}

/** In-memory transport: tests push requests with `request` and read `sent`. */
export class MemoryTransport implements Transport {
  readonly sent: Sent[] = [];
  private onRequest?: (channel: RequestChannel, msg: Message) => void;
  private seq = 0;
  async start(onRequest: (channel: RequestChannel, msg: Message) => void): Promise<void> {
    this.onRequest = onRequest;
  }
  request(msgType: string, content: Record<string, unknown> = {}, channel: RequestChannel = "shell", buffers: Buffer[] = []): Message {
    const msg: Message = {
      identities: [Buffer.from("client")],
      header: { msg_id: `m${++this.seq}`, session: "s", username: "u", date: new Date().toISOString(), msg_type: msgType, version: "5.3" },
      parent_header: {},
      metadata: {},
      content,
      buffers,
    };
    this.onRequest!(channel, msg);
    return msg;
  }
  send(channel: Channel, msgType: string, content: object, parent: Message | undefined, opts: SendOptions = {}): void {
    this.sent.push({ channel, msgType, content, parent: parent?.header, metadata: opts.metadata ?? {}, buffers: opts.buffers ?? [] });
  }
  stream(name: "stdout" | "stderr", text: string, parent: Message | undefined): void {
    const last = this.sent[this.sent.length - 1];
    if (last && last.msgType === "stream" && last.content.name === name && last.parent === parent?.header) last.content.text += text;
    else this.sent.push({ channel: "iopub", msgType: "stream", content: { name, text }, parent: parent?.header, metadata: {}, buffers: [] });
  }
  outputParent(): void {}
  async barrier(): Promise<void> {}
  close(): void {}
}
