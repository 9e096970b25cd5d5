// A viewer on a raw TCP socket (node:net, so it can bind a chosen loopback source address):
// real upgrade handshake, masked client frames, and server frames parsed as they stream in
// without keeping big payloads (a `server-join` is counted, not decoded). Reads can be
// throttled to a fixed rate (the socket is paused, so the kernel's buffers fill and the
// server's unsent bytes grow, as with a slow client).
import net from "node:net";
import { concat, frameHeader } from "./bytes.ts";

/** One frame from the server. */
export interface RawFrame {
  /** `type` of the JSON frame (read from its first bytes), or `close`. */
  type: string;
  /** Payload size in bytes. */
  bytes: number;
  /** The whole payload, for frames of at most 64 KiB. */
  text?: string;
  /** When the last byte arrived (`performance.now()`). */
  at: number;
  /** When the frame's header arrived (`performance.now()`). */
  startAt: number;
}

/** How to connect. */
export interface ViewerOptions {
  /** Loopback source address to bind (distinct addresses look like distinct clients). */
  localAddress?: string;
  /** Read at most this many bytes per second (default: as fast as they come). */
  readBytesPerSecond?: number;
}

const KEEP = 64 * 1024;
const decoder = new TextDecoder();

/** A raw WebSocket viewer. */
export class RawViewer {
  readonly frames: RawFrame[] = [];
  /** Close code from the server's close frame, when one came. */
  closeCode: number | undefined;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
  /** Bytes received so far (frames and headers). */
  received = 0;
  #socket: net.Socket;
  #buf: Uint8Array = new Uint8Array(0) as Uint8Array;
  // The frame being read: its header is parsed, its payload is arriving.
  #frame:
    | { opcode: number; length: number; got: number; head: Uint8Array[]; startAt: number }
    | undefined;
  #waiters: Array<() => void> = [];
  #isClosed = false;

  private constructor(socket: net.Socket, rest: Uint8Array, rate: number | undefined) {
    this.#socket = socket;
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.#isClosed = true;
        this.#wake();
        resolve();
      })
    );
    const start = performance.now();
    socket.on("data", (chunk: Uint8Array) => {
      this.received += chunk.length;
      this.#feed(chunk);
      if (rate) {
        // Ahead of schedule: stop reading until the schedule catches up.
        const dueMs = this.received * 1000 / rate - (performance.now() - start);
        if (dueMs > 1) {
          socket.pause();
          setTimeout(() => socket.resume(), dueMs);
        }
      }
    });
    if (rest.length) this.#feed(rest);
  }

  /** Connect to `127.0.0.1:port`, upgrade, and start reading. */
  static connect(port: number, options: ViewerOptions = {}): Promise<RawViewer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress: options.localAddress });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.write(
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
            `Sec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      let head: Uint8Array = new Uint8Array(0);
      const onData = (chunk: Uint8Array) => {
        head = concat(head, chunk);
        const end = indexOfCrlfCrlf(head);
        if (end < 0) return;
        socket.off("data", onData);
        socket.off("error", reject);
        socket.on("error", () => {});
        const status = decoder.decode(head.subarray(0, end)).split(" ")[1];
        if (status !== "101") {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        resolve(new RawViewer(socket, head.subarray(end + 4), options.readBytesPerSecond));
      };
      socket.on("data", onData);
    });
  }

  /** Whether the socket is closed. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Send one masked text frame. */
  send(value: unknown): void {
    const payload = new TextEncoder().encode(
      typeof value === "string" ? value : JSON.stringify(value),
    );
    const len = payload.length;
    const header = len < 126 ? [0x81, 0x80 | len] : [0x81, 0x80 | 126, len >> 8, len & 255];
    const frame = new Uint8Array(header.length + 4 + len);
    frame.set(header);
    frame.set(payload, header.length + 4); // a zero mask keeps the payload as is
    this.#socket.write(frame);
  }

  /** Frames of `type` received so far. */
  count(type: string): number {
    return this.frames.filter((f) => f.type === type).length;
  }

  /** Send `connect` for `server`. */
  connect(server: string): void {
    this.send({ type: "connect", data: { server } });
  }

  /** Wait for the first frame at or after index `from` that `match`es; `undefined` if the socket closes first or `ms` pass. */
  async waitFor(
    match: (f: RawFrame) => boolean,
    from = 0,
    ms = 120_000,
  ): Promise<RawFrame | undefined> {
    const deadline = Date.now() + ms;
    for (let i = from;;) {
      for (; i < this.frames.length; i++) if (match(this.frames[i])) return this.frames[i];
      if (this.#isClosed || Date.now() > deadline) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Close the TCP connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #feed(chunk: Uint8Array): void {
    let data = this.#buf.length ? concat(this.#buf, chunk) : chunk;
    for (;;) {
      if (!this.#frame) {
        const h = frameHeader(data);
        if (!h) break;
        this.#frame = {
          opcode: h.opcode,
          length: h.length,
          got: 0,
          head: [],
          startAt: performance.now(),
        };
        data = data.subarray(h.offset);
      }
      const f = this.#frame;
      const take = Math.min(f.length - f.got, data.length);
      const kept = f.head.reduce((n, h) => n + h.length, 0);
      if (kept < KEEP && take > 0) f.head.push(data.slice(0, Math.min(take, KEEP - kept)));
      f.got += take;
      data = data.subarray(take);
      if (f.got < f.length) break;
      this.#frame = undefined;
      this.#complete(f.opcode, f.length, concat(...f.head), f.startAt);
    }
    this.#buf = data.length ? data.slice() : new Uint8Array(0);
    this.#wake();
  }

  #complete(opcode: number, length: number, head: Uint8Array, startAt: number): void {
    const at = performance.now();
    if (opcode === 8) {
      this.closeCode = head.length >= 2 ? (head[0] << 8) | head[1] : 1005;
      this.frames.push({ type: "close", bytes: length, at, startAt });
      this.#socket.end();
      return;
    }
    if (opcode === 9) {
      // Answer pings, or the server's idle timeout would end a long test.
      const pong = new Uint8Array(6 + head.length);
      pong.set([0x8a, 0x80 | head.length]);
      pong.set(head, 6);
      this.#socket.write(pong);
      return;
    }
    if (opcode !== 1) return;
    const prefix = decoder.decode(head.subarray(0, 64));
    const type = prefix.match(/^\{"type":"([^"]+)"/)?.[1] ?? "<unknown>";
    const frame: RawFrame = { type, bytes: length, at, startAt };
    if (length <= KEEP) frame.text = decoder.decode(head);
    this.frames.push(frame);
  }
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}
