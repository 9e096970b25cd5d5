// Shared test harness: real servers on port 0, real WebSocket clients.
import assert from "node:assert/strict";
import net from "node:net";
import { type LogRecord, type ServerOptions, WebSocketServer } from "../../mod.ts";

/** A parsed server-to-client frame. */
// deno-lint-ignore no-explicit-any
export type Frame = { type: string; server?: string; data: any };

/** A started test server; `await using` stops it even when an assertion fails. */
export interface TestServer extends AsyncDisposable {
  server: WebSocketServer;
  logs: LogRecord[];
  url: string;
  http: string;
}

/** Start a server on 127.0.0.1:0 with logs captured instead of printed. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const logs: LogRecord[] = [];
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "debug",
    logSink: (r) => logs.push(r),
    ...options,
  });
  await server.start();
  return {
    server,
    logs,
    url: `ws://127.0.0.1:${server.port}`,
    http: `http://127.0.0.1:${server.port}`,
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

/** A WebSocket client that records every frame and lets tests wait for the next ones. */
export class Client implements AsyncDisposable {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  #read = 0;
  #waiters: Array<() => void> = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;

  constructor(url: string, protocols?: string | string[]) {
    this.ws = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener("error", () => reject(new Error("websocket error")), { once: true });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener("close", (e) => {
        resolve(e);
        this.#wake();
      }, { once: true });
    });
    this.ws.addEventListener("message", (e) => {
      const text = typeof e.data === "string" ? e.data : "";
      this.raw.push(text);
      try {
        this.frames.push(JSON.parse(text));
      } catch {
        this.frames.push({ type: "<not json>", data: text });
      }
      this.#wake();
    });
  }

  /** Connect and wait for the socket to open. */
  static async open(url: string): Promise<Client> {
    const c = new Client(url);
    await c.opened;
    return c;
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** The next unread frame (waits up to `ms`). */
  async next(ms = 3000): Promise<Frame> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.frames.length) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("socket closed while waiting");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames[this.#read++];
  }

  /** Skip frames until one of `type` arrives; returns it. */
  async nextOf(type: string, ms = 3000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (f.type === type) return f;
    }
  }

  /** Assert no further frame arrives within `ms`; returns any that did. */
  async quiet(ms: number): Promise<Frame[]> {
    await new Promise((r) => setTimeout(r, ms));
    const extra = this.frames.slice(this.#read);
    this.#read = this.frames.length;
    return extra;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /** Send a connect request and return the answer (server-join or error). */
  async join(server: unknown, extra: Record<string, unknown> = {}): Promise<Frame> {
    this.send({ type: "connect", data: { server, ...extra } });
    for (;;) {
      const f = await this.next();
      if (f.type === "server-join" || f.type === "error") return f;
    }
  }

  /** Close and wait for the close to complete. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }

  /** `await using c = …` closes the client at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Open a client, read its server-list, optionally join; returns the client. */
export async function joined(url: string, server?: string): Promise<Client> {
  const c = await Client.open(url);
  const list = await c.next();
  if (list.type !== "server-list") throw new Error(`expected server-list, got ${list.type}`);
  if (server !== undefined) {
    const j = await c.join(server);
    if (j.type !== "server-join") throw new Error(`join failed: ${JSON.stringify(j)}`);
  }
  return c;
}

/** Wait until `cond` is true, polling; throws after `ms`. */
export async function until(cond: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Mock-world Discord ids. */
export const DWORLD = "232769614004748288";
export const DOCS = "482241773318701056";
export const OAUTH = "123456789012345678";
export const REPOS = "987654321098765432";

/**
 * A raw TCP WebSocket handshake: returns the status line and the open connection,
 * which never reads unless asked (a client that stopped reading).
 */
export async function rawUpgrade(
  port: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; conn: Deno.TcpConn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await conn.write(
    new TextEncoder().encode(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    ),
  );
  // Read just the response head, byte by byte, so nothing after it is consumed.
  const head: number[] = [];
  const one = new Uint8Array(1);
  while (head.length < 4 || head.slice(-4).join(",") !== "13,10,13,10") {
    const n = await conn.read(one);
    if (n === null) break;
    head.push(one[0]);
  }
  const line = new TextDecoder().decode(new Uint8Array(head)).split("\r\n")[0];
  return { status: Number(line.split(" ")[1] ?? 0), conn };
}

/** Write one masked client text frame on a raw connection. */
export async function rawSend(conn: Deno.TcpConn, text: string): Promise<void> {
  const payload = new TextEncoder().encode(text);
  const len = payload.length;
  const header = len < 126 ? [0x81, 0x80 | len] : [0x81, 0x80 | 126, len >> 8, len & 255];
  const frame = new Uint8Array(header.length + 4 + len);
  frame.set(header);
  // Mask of zeros: valid, and keeps the payload as is.
  frame.set(payload, header.length + 4);
  await conn.write(frame);
}

/** A raw HTTP/1.1 GET, the path sent as given (fetch would normalise it); the whole answer. */
export async function rawGet(port: number, path: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
  );
  const chunks: Uint8Array[] = [];
  for await (const chunk of conn.readable) chunks.push(chunk);
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/**
 * Ask for paths that try to leave the static folder (encoded dots, a backslash, a symlink that
 * points out) and check each is refused with 403 and nothing of `secret.txt`, which the static
 * fixtures keep one level above the folder ("top secret") with `link-out.txt` pointing at it.
 */
export async function assertNoTraversal(port: number): Promise<void> {
  for (
    const path of [
      "/..%2fsecret.txt",
      "/%2e%2e%2fsecret.txt",
      "/sub/..%2F..%2Fsecret.txt",
      "/..%5csecret.txt",
      "/link-out.txt",
    ]
  ) {
    const text = await rawGet(port, path);
    assert.match(text, /^HTTP\/1\.1 403/, path);
    assert.equal(text.includes("top secret"), false, path);
  }
}

/** Send an upgrade request, then reset the TCP connection (RST, SO_LINGER 0) before the 101. */
export async function resetUpgrade(port: number): Promise<void> {
  const s = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("error", reject);
  });
  const upgrade = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "Sec-WebSocket-Version: 13\r\n\r\n";
  await new Promise<void>((resolve) => s.write(upgrade, () => resolve()));
  await new Promise((r) => setTimeout(r, 5));
  s.resetAndDestroy();
}
