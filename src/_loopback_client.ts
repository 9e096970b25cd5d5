/**
 * A bare WebSocket client over `node:net` for the start-up warm-up
 * (internal): it sends the handshake, answers the server list with one
 * `connect` and closes once the next text frame (the join) has arrived. It
 * loads no runtime WebSocket client (on Bun, using that client left the
 * server's later broadcasts dearer), runs alike on Deno, Bun and Node, and
 * can connect from any loopback address, so that each warm-up client is a
 * client of its own to the per-address budgets, as in a real storm.
 *
 * @module
 */
import type { Socket } from "node:net";

/** The part of `node:net` used here (loaded only when a warm-up needs it). */
export type Net = Pick<typeof import("node:net"), "connect">;

const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const SERVER_LIST = new TextEncoder().encode('{"type":"server-list"');
const ERROR = new TextEncoder().encode('{"type":"error"');
// Nothing here is secret: the server only needs the frames masked.
const MASK = [0x12, 0x34, 0x56, 0x78];

/**
 * One masked client frame.
 *
 * @example
 * ```ts
 * import { clientFrame } from "./_loopback_client.ts";
 * const f = clientFrame(1, new TextEncoder().encode("hi"));
 * if (f.length !== 8 || f[0] !== 0x81 || f[1] !== 0x82) throw new Error(String(f));
 * if (String.fromCharCode(f[6] ^ f[2], f[7] ^ f[3]) !== "hi") throw new Error("masked payload");
 * ```
 */
export function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(MASK, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = payload[i] ^ MASK[i & 3];
  return out;
}

/**
 * The complete (unmasked, unfragmented) server frames at the start of `buf`:
 * opcode and payload of each, and how many bytes they took.
 *
 * @example
 * ```ts
 * import { serverFrames } from "./_loopback_client.ts";
 * const buf = new Uint8Array([0x81, 2, 104, 105, 0x81, 126, 0]);
 * const { frames, used } = serverFrames(buf);
 * if (frames.length !== 1 || used !== 4) throw new Error(`${frames.length} ${used}`);
 * if (frames[0][0] !== 1 || new TextDecoder().decode(frames[0][1]) !== "hi") throw new Error();
 * ```
 */
export function serverFrames(buf: Uint8Array): { frames: [number, Uint8Array][]; used: number } {
  const frames: [number, Uint8Array][] = [];
  let at = 0;
  while (buf.length - at >= 2) {
    let n = buf[at + 1] & 0x7f;
    let head = 2;
    if (n === 126) {
      if (buf.length - at < 4) break;
      n = (buf[at + 2] << 8) | buf[at + 3];
      head = 4;
    } else if (n === 127) {
      if (buf.length - at < 10) break;
      n = Number(new DataView(buf.buffer, buf.byteOffset + at + 2, 8).getBigUint64(0));
      head = 10;
    }
    if (buf.length - at < head + n) break;
    frames.push([buf[at] & 0x0f, buf.subarray(at + head, at + head + n)]);
    at += head + n;
  }
  return { frames, used: at };
}

/** Where and how one warm-up client connects. */
export interface JoinTarget {
  port: number;
  /** The loopback address to connect from (default: the system's choice). */
  from?: string;
  /** An `Origin` to send (default: none). */
  origin?: string;
  /** Every socket still open is in here, so that a deadline can end them all. */
  open: Set<Socket>;
}

/**
 * Join once. Resolves `"joined"` when a text frame followed the server list,
 * `"refused"` when the server answered but not with a join (a 4xx/5xx, a
 * close, an error frame), `"failed"` when no connection could be made (with
 * `from`: that address may not be usable here); never rejects.
 *
 * @example
 * ```ts
 * import * as net from "node:net";
 * import { joinOnce } from "./_loopback_client.ts";
 * import { WebSocketServer } from "../mod.ts";
 * await using server = new WebSocketServer({
 *   port: 0,
 *   hostname: "127.0.0.1",
 *   logLevel: "silent",
 *   allowedOrigins: ["https://d-zone.example"],
 * });
 * await server.start();
 * const open = new Set<import("node:net").Socket>();
 * const to = { port: server.port!, from: "127.0.0.9", open };
 * const ok = await joinOnce(net, { ...to, origin: "https://d-zone.example" });
 * const other = await joinOnce(net, { ...to, origin: "https://evil.example" });
 * if (ok !== "joined" || other !== "refused") throw new Error(`${ok} ${other}`);
 * ```
 */
export function joinOnce(net: Net, t: JoinTarget): Promise<"joined" | "refused" | "failed"> {
  return new Promise((resolve) => {
    let socket: Socket;
    let buf: Uint8Array = new Uint8Array(0);
    let answered = false;
    let upgraded = false;
    let listed = false;
    const end = (how: "joined" | "refused" | "failed") => {
      socket.removeAllListeners("data");
      if (how === "joined") socket.end(clientFrame(OPCODE_CLOSE, new Uint8Array([0x03, 0xe8])));
      else socket.destroy();
      resolve(how);
    };
    try {
      socket = net.connect({ host: "127.0.0.1", port: t.port, localAddress: t.from });
    } catch {
      return resolve("failed");
    }
    t.open.add(socket);
    socket.on("error", () => resolve(answered ? "refused" : "failed"));
    socket.on("close", () => {
      t.open.delete(socket);
      resolve(answered ? "refused" : "failed");
    });
    socket.on("connect", () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${t.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
          (t.origin ? `Origin: ${t.origin}\r\n` : "") + "\r\n",
      );
    });
    socket.on("data", (chunk: Uint8Array) => {
      answered = true;
      buf = concat(buf, chunk);
      if (!upgraded) {
        const head = headEnd(buf);
        if (head < 0) return;
        // "HTTP/1.1 101"
        if (buf[9] !== 0x31 || buf[10] !== 0x30 || buf[11] !== 0x31) return end("refused");
        upgraded = true;
        buf = buf.subarray(head + 4);
      }
      const { frames, used } = serverFrames(buf);
      buf = buf.subarray(used);
      for (const [opcode, payload] of frames) {
        if (opcode === OPCODE_CLOSE) return end("refused");
        if (opcode !== OPCODE_TEXT) continue;
        if (listed) return end(startsWith(payload, ERROR) ? "refused" : "joined");
        if (!startsWith(payload, SERVER_LIST)) return end("refused");
        listed = true;
        socket.write(clientFrame(OPCODE_TEXT, new TextEncoder().encode(connectTo(payload))));
      }
    });
  });
}

/**
 * The `connect` a d-zone client sends after this server list: to the default
 * server by its short id (to the default, unnamed, if the list says none).
 *
 * @example
 * ```ts
 * import { connectTo } from "./_loopback_client.ts";
 * const list = '{"type":"server-list","data":{"1":{"id":"a","name":"A"},"2":{"id":"b","name":"B","default":true}}}';
 * const frame = connectTo(new TextEncoder().encode(list));
 * if (frame !== '{"type":"connect","data":{"server":"b"}}') throw new Error(frame);
 * ```
 */
export function connectTo(serverList: Uint8Array): string {
  let id: unknown;
  try {
    const servers = Object.values(JSON.parse(new TextDecoder().decode(serverList)).data ?? {}) as {
      id?: unknown;
      default?: unknown;
    }[];
    id = (servers.find((e) => e?.default === true) ?? servers[0])?.id;
  } catch {
    // not a list after all: the default server, unnamed
  }
  return JSON.stringify({ type: "connect", data: typeof id === "string" ? { server: id } : {} });
}

function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function headEnd(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}
