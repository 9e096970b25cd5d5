/**
 * Web `Request`/`Response` over `node:http` (internal), for the Node
 * transport: a request head becomes a body-less `Request` (dback answers only
 * GET and HEAD and never reads a body), and a `Response` is written back with
 * its body streamed under the socket's backpressure. Also the plain HTTP
 * answer written on a raw socket when an upgrade request is refused.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

// A Host header is only trusted to build the URL when it looks like one.
const HOST = /^[A-Za-z0-9._~-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * The web `Request` for a node request head. `fallbackHost` names the
 * listener when the `Host` header is missing or malformed.
 */
export function toRequest(req: IncomingMessage, fallbackHost: string, secure = false): Request {
  const host = req.headers.host && HOST.test(req.headers.host) ? req.headers.host : fallbackHost;
  // Concatenated, not resolved against a base: "//x" must stay a path, not become a host.
  const target = req.url?.startsWith("/") ? req.url : "/";
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // a value the Fetch API refuses is left out, as a proxy would
    }
  }
  const init = { method: req.method ?? "GET", headers };
  const scheme = secure ? "https" : "http";
  try {
    return new Request(`${scheme}://${host}${target}`, init);
  } catch {
    // A Host that only looked valid (port 99999): the URL names the listener; the header stays
    // as sent, for the server's own Host check to refuse.
    return new Request(`${scheme}://${fallbackHost}${target}`, init);
  }
}

/**
 * The head of an upgrade request as the parts of a `Request` the server
 * reads on its upgrade path (`method`, `url`, `headers.get`/`has`), without
 * building a web `Request` and its `Headers` (several KiB of garbage per
 * upgrade). The URL and every header value are what {@link toRequest} would
 * give: the `Host` it trusts or the listener, and the values of one name
 * joined with ", " in the order sent.
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from "node:http";
 * import { upgradeRequest } from "./_node_http.ts";
 * const head = {
 *   method: "GET",
 *   url: "/ws",
 *   headers: { host: "dzone.example" },
 *   rawHeaders: ["Host", "dzone.example", "X-Forwarded-For", "192.0.2.1", "x-forwarded-for", "192.0.2.2"],
 * } as unknown as IncomingMessage;
 * const req = upgradeRequest(head, "127.0.0.1:3000");
 * if (req.url !== "http://dzone.example/ws") throw new Error(req.url);
 * if (req.headers.get("X-Forwarded-For") !== "192.0.2.1, 192.0.2.2") throw new Error("joined");
 * if (req.headers.get("origin") !== null || req.headers.has("origin")) throw new Error("absent");
 * ```
 */
export function upgradeRequest(
  req: IncomingMessage,
  fallbackHost: string,
  secure = false,
): Request {
  const host = req.headers.host && HOST.test(req.headers.host) ? req.headers.host : fallbackHost;
  const target = req.url?.startsWith("/") ? req.url : "/";
  const scheme = secure ? "https" : "http";
  const method = req.method ?? "GET";
  // As the Request constructor (and toRequest): a method the Fetch API forbids throws.
  if (FORBIDDEN_METHOD.test(method)) throw new TypeError(`method ${method} is forbidden`);
  let url = `${scheme}://${host}${target}`;
  // As toRequest: a Host that only looked valid (port 99999) gives the listener's URL.
  if (!URL.canParse(url)) url = `${scheme}://${fallbackHost}${target}`;
  return new UpgradeHead(method, url, new RawHeaders(req.rawHeaders)) as unknown as Request;
}

const FORBIDDEN_METHOD = /^(?:CONNECT|TRACE|TRACK)$/i;

class UpgradeHead {
  readonly method: string;
  readonly url: string;
  readonly headers: RawHeaders;
  constructor(method: string, url: string, headers: RawHeaders) {
    this.method = method;
    this.url = url;
    this.headers = headers;
  }
}

// What the Fetch API strips from both ends of a header value.
const EDGE_SPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/** A request head's headers, read from node's raw list when asked (names case-insensitive). */
class RawHeaders {
  #raw: string[];
  constructor(raw: string[]) {
    this.#raw = raw;
  }
  get(name: string): string | null {
    const want = name.toLowerCase();
    const raw = this.#raw;
    let out: string | null = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = raw[i];
      if (k.length !== want.length || k.toLowerCase() !== want) continue;
      const v = raw[i + 1].replace(EDGE_SPACE, "");
      out = out === null ? v : `${out}, ${v}`;
    }
    return out;
  }
  has(name: string): boolean {
    return this.get(name) !== null;
  }
}

function nodeHeaders(res: Response): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  res.headers.forEach((value, name) => {
    if (name !== "set-cookie") out[name] = value;
  });
  const cookies = res.headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

/** Resolves once `res` can take more data, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Write `response` to `res`, streaming its body; a peer that goes away
 * cancels the body (a file stream is closed, not read to the end).
 */
export async function writeResponse(
  res: ServerResponse,
  response: Response,
  head: boolean,
): Promise<void> {
  const headers = nodeHeaders(response);
  const body = response.body;
  if (!body || head) {
    await body?.cancel().catch(() => {});
    res.writeHead(response.status, response.statusText || undefined, headers);
    res.end();
    return;
  }
  const reader = body.getReader();
  const gone = () => void reader.cancel().catch(() => {});
  res.once("close", gone);
  try {
    // A body that comes in one piece (dback's pages, JSON, metrics) is sent with its length,
    // as Deno and Bun do; longer ones (files) stream chunked unless they carry a length.
    const first = await reader.read();
    const second = first.done ? first : await reader.read();
    if (second.done && headers["content-length"] === undefined) {
      headers["content-length"] = String(first.value?.byteLength ?? 0);
    }
    res.writeHead(response.status, response.statusText || undefined, headers);
    for (const piece of [first, second]) {
      if (piece.done || res.destroyed) break;
      if (!res.write(piece.value)) await drained(res);
    }
    while (!second.done) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } catch {
    // the body failed midway: the length promised cannot be kept, so the peer must see an error
    res.destroy();
  } finally {
    res.off("close", gone);
  }
}

/**
 * Answer an upgrade request that was refused (403, 429, 503...) on its raw
 * socket, then close the socket: no HTTP parser is attached to it any more.
 */
export async function writeRawResponse(socket: Duplex, response: Response): Promise<void> {
  // Refusals are dback's small error pages; anything bigger is cut, never buffered whole.
  const body = new Uint8Array(await response.arrayBuffer()).subarray(0, 64 * 1024);
  const title = response.statusText || STATUS_CODES[response.status] || "";
  let head = `HTTP/1.1 ${response.status} ${title}\r\n`;
  for (const [name, value] of Object.entries(nodeHeaders(response))) {
    if (name === "content-length" || name === "connection") continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  head += `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`;
  if (socket.destroyed) return;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
  // A peer that never reads must not keep the socket: end() waits for the write to drain.
  setTimeout(() => socket.destroy(), 2000).unref();
}
