// A WebSocket client that picks its source address (distinct users are distinct loopback
// addresses: 127.0.0.10, 127.0.0.11, …), optionally over TLS, with any request headers.
// node:net/node:tls because neither Deno's nor Bun's WebSocket can bind a local address.
import net from "node:net";
import tls from "node:tls";
import { concat, frameHeader } from "../_fixtures/bytes.ts";

/** Where to connect and how. */
export interface WsTarget {
  host: string;
  port: number;
  localAddress?: string;
  tls?: boolean;
  path?: string;
  /** The Host header (default host:port). */
  hostHeader?: string;
  headers?: Record<string, string>;
}

/** An upgraded (or refused) connection. */
export interface RawWs {
  /** HTTP status of the upgrade answer (101 when accepted). */
  status: number;
  /** The next text message (rejects when the socket closes first). */
  next(): Promise<string>;
  /** Send one text message. */
  send(text: string): void;
  /** Close the TCP connection. */
  close(): void;
  /** Resolves when the socket is closed. */
  closed: Promise<void>;
}

/** Open a WebSocket from `localAddress`; resolves with the answer to the upgrade. */
export function wsFrom(t: WsTarget): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const opts = { host: t.host, port: t.port, localAddress: t.localAddress };
    const socket: net.Socket = t.tls
      ? tls.connect({ ...opts, rejectUnauthorized: false, servername: "localhost" })
      : net.connect(opts);
    const messages: string[] = [];
    const waiters: Array<{ ok: (m: string) => void; fail: (e: Error) => void }> = [];
    let buf = new Uint8Array(0);
    let status = 0;
    let done = false;
    const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
    const ws: RawWs = {
      get status() {
        return status;
      },
      next: () =>
        messages.length
          ? Promise.resolve(messages.shift()!)
          : done
          ? Promise.reject(new Error("closed"))
          : new Promise((ok, fail) => waiters.push({ ok, fail })),
      send(text) {
        const payload = new TextEncoder().encode(text);
        const n = payload.length;
        const head = n < 126 ? [0x81, 0x80 | n] : [0x81, 0x80 | 126, n >> 8, n & 255];
        // A zero mask is valid and keeps the payload as is.
        socket.write(new Uint8Array([...head, 0, 0, 0, 0, ...payload]));
      },
      close: () => socket.destroy(),
      closed,
    };
    const connectEvent = t.tls ? "secureConnect" : "connect";
    socket.once(connectEvent, () => {
      const headers = {
        Host: t.hostHeader ?? `${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`,
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        ...t.headers,
      };
      socket.write(
        `GET ${t.path ?? "/"} HTTP/1.1\r\n` +
          Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n",
      );
    });
    socket.on("data", (chunk: Uint8Array) => {
      buf = concat(buf, chunk);
      if (status === 0) {
        const text = new TextDecoder("latin1").decode(buf);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return;
        status = Number(text.split(" ")[1]);
        buf = buf.slice(end + 4);
        resolve(ws);
        if (status !== 101) {
          socket.destroy();
          return;
        }
      }
      for (;;) {
        const h = frameHeader(buf);
        if (!h || buf.length < h.offset + h.length) return;
        const { opcode } = h;
        const payload = buf.slice(h.offset, h.offset + h.length);
        buf = buf.slice(h.offset + h.length);
        if (opcode === 1) {
          const m = new TextDecoder().decode(payload);
          const w = waiters.shift();
          if (w) w.ok(m);
          else messages.push(m);
        } else if (opcode === 8) socket.destroy();
      }
    });
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      onClosed();
      if (status === 0) reject(err ?? new Error("closed before the upgrade answer"));
      for (const w of waiters.splice(0)) w.fail(new Error("closed"));
    };
    socket.on("error", (e) => finish(e));
    socket.on("close", () => finish());
  });
}

/** Open from `localAddress`, read the server list and join `server`: whether it joined. */
export async function joinFrom(t: WsTarget, server: string): Promise<RawWs & { joined: boolean }> {
  const ws = await wsFrom(t);
  if (ws.status !== 101) return Object.assign(ws, { joined: false });
  try {
    const list = JSON.parse(await ws.next());
    if (list.type !== "server-list") return Object.assign(ws, { joined: false });
    ws.send(JSON.stringify({ type: "connect", data: { server } }));
    const join = JSON.parse(await ws.next());
    return Object.assign(ws, { joined: join.type === "server-join" });
  } catch {
    return Object.assign(ws, { joined: false });
  }
}
