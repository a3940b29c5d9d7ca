/**
 * The messages that cross between the main thread and the I/O worker (a MessagePort, so plain
 * structured-clone data: Buffers arrive as Uint8Array and are rewrapped on the other side).
 */
import type { Message } from "./wire";

export interface ConnectionInfo {
  transport: string;
  ip: string;
  shell_port: number;
  control_port: number;
  stdin_port: number;
  iopub_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
}

export type Channel = "shell" | "control" | "stdin" | "iopub";

/** Main → I/O worker. */
export type ToIo =
  | { kind: "send"; channel: Channel; msgType: string; content: object; parent: object; identities?: Uint8Array[]; metadata?: object; buffers?: Uint8Array[] }
  | { kind: "stream"; name: "stdout" | "stderr"; text: string; parent: object }
  /** The parent header for output read from the native fd FIFOs. */
  | { kind: "context"; parent: object }
  /** Answered with a barrier of the same id once every earlier request has been forwarded. */
  | { kind: "barrier"; id: number }
  | { kind: "close" };

/** I/O worker → main. */
export type FromIo =
  | { kind: "ready" }
  | { kind: "failed"; message: string }
  | { kind: "request"; channel: "shell" | "control"; msg: Message }
  | { kind: "barrier"; id: number };
