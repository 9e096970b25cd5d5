/**
 * The HTTP side of the one port: `/api/version`, `/api/status`, `/healthz`,
 * `/metrics` (unless moved or off), static files (after the `staticRequest`
 * hook), and WebSocket upgrades handed to admission. Only GET and HEAD are
 * answered; anything else is 405. A request whose `Host` is not a host name
 * gets 400. The built-in page carries a tight Content-Security-Policy.
 *
 * @module
 */
import { type CallbackRunner, staticResultSchema } from "./_callback_runner.ts";
import type { Callbacks, StaticResult } from "./callbacks.ts";
import { errorPage, normaliseRequestPath, type StaticSource } from "./_static.ts";
import type { FetchHandler, RequestContext } from "./transport/types.ts";
import { VERSION } from "./version.ts";

/** What the routes need from the rest of the server. */
export interface RouteDeps {
  /** Whether the server is serving (not draining). */
  healthy(): boolean;
  /** The `/metrics` text, or `null` when `/metrics` is not served on this port. */
  metrics: (() => string) | null;
  /** The data source's kind and state, when it reports them. */
  sourceState(): { kind: string; state: string } | undefined;
  /** The `/api/status` object (counts only). */
  status(): unknown;
  /** Whether static files are the built-in page (it gets the security headers). */
  builtinPage: boolean;
  /** The configured public origins (the page's WebSocket goes there, not to `Host`). */
  publicOrigins: readonly string[];
  /** Told about a refused request (debug level). */
  debug(message: string): void;
  /** The hooks (read at each request). */
  hooks: Readonly<Callbacks>;
  /** Runs the `staticRequest` hook with its deadline. */
  runner: CallbackRunner;
  /** Static files, or `null` when disabled. */
  files: StaticSource | null;
  /** Handle a WebSocket upgrade request. */
  upgrade(req: Request, ctx: RequestContext): Response;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const JSON_TYPE = { "content-type": "application/json; charset=utf-8" };

// A host name, IPv4 or bracketed IPv6 address, and an optional port: nothing a URL would reinterpret.
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * Whether a `Host` header value is a plain host (and port). A missing header
 * is `true` here: a request built in code (mounted use) has none; the
 * listener refuses one without it from the network.
 *
 * @example
 * ```ts
 * import { validHost } from "./_http.ts";
 * if (!validHost("dzone.example:443") || !validHost("[::1]:3000")) throw new Error("refused a good host");
 * if (validHost("evil test") || validHost("a@b") || validHost("x:99999")) throw new Error("took a bad host");
 * ```
 */
export function validHost(host: string | null): boolean {
  if (host === null) return true;
  if (!HOST.test(host)) return false;
  const port = host.match(/:(\d+)$/);
  return !port || host.endsWith("]") || Number(port[1]) <= 65535;
}

/**
 * The headers of the built-in page: it loads only its own scripts and
 * styles, talks only to its own server (`ws`/`wss` included), and may not be
 * framed. `host` is the request's (already checked) `Host`. With public
 * origins configured, the `ws`/`wss` sources come from them, port included:
 * a proxy on another port than 443 often passes a `Host` without it.
 *
 * @example
 * ```ts
 * import { pageSecurityHeaders } from "./_http.ts";
 * const csp = pageSecurityHeaders("dzone.example", ["https://dzone.example:8443"])["content-security-policy"];
 * if (!csp.includes("connect-src 'self' wss://dzone.example:8443;")) throw new Error(csp);
 * ```
 */
export function pageSecurityHeaders(
  host: string | null,
  publicOrigins: readonly string[] = [],
): Record<string, string> {
  const ws = publicOrigins.length > 0
    ? publicOrigins.map((o) => {
      const u = new URL(o);
      return ` ${u.protocol === "https:" ? "wss" : "ws"}://${u.host}`;
    }).join("")
    : host
    ? ` ws://${host} wss://${host}`
    : "";
  return {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
      `img-src 'self' data:; connect-src 'self'${ws}; base-uri 'none'; form-action 'none'; ` +
      "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
  };
}

/** The `/metrics` response. */
export function metricsResponse(text: string, head: boolean): Response {
  return new Response(head ? null : text, {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}

/**
 * The request handler of the whole port. Synchronous up to the static files:
 * an upgrade (or an API answer) is returned as is, not wrapped in a promise
 * the runtime would then have to wait on (on Bun, a measurable part of a join).
 */
export function routes(deps: RouteDeps): FetchHandler {
  // The last Host whose URL parsed: an upgrade (whose path nobody reads) from that Host is not
  // parsed again. Only the Host can make the URL throw: the path is the runtime's, already
  // parsed from the request line.
  let goodHost: string | undefined;
  return (req, ctx) => {
    const host = req.headers.get("host");
    const upgrade = req.headers.get("upgrade")?.toLowerCase() === "websocket";
    if (upgrade && host !== null && host === goodHost) return deps.upgrade(req, ctx);
    let url: URL | null = null;
    try {
      // Deno builds req.url from Host: a malformed one throws here.
      if (validHost(host)) url = new URL(req.url);
    } catch {
      // answered below
    }
    if (!url) {
      deps.debug(`bad Host header ${JSON.stringify((host ?? "").slice(0, 100))}: 400`);
      return errorPage(400, "Bad Request");
    }
    if (host !== null) goodHost = host;
    if (upgrade) return deps.upgrade(req, ctx);
    if (req.method !== "GET" && req.method !== "HEAD") {
      const res = errorPage(405, "Method Not Allowed");
      res.headers.set("allow", "GET, HEAD");
      return res;
    }
    const path = url.pathname;
    const head = req.method === "HEAD";
    switch (path) {
      case "/api/version":
        // Spelled out: each runtime's Response.json writes its own content type.
        return new Response(JSON.stringify({ version: VERSION }), { headers: JSON_TYPE });
      case "/healthz": {
        const ok = deps.healthy();
        // Serving, but the data is not live yet (e.g. the Discord gateway is still connecting).
        const src = deps.sourceState();
        const note = ok && src && src.state !== "ready" ? `source: ${src.kind} ${src.state}\n` : "";
        return new Response(head ? null : ok ? `ok\n${note}` : "draining\n", {
          status: ok ? 200 : 503,
          headers: TEXT,
        });
      }
      case "/api/status":
        return Response.json(deps.status(), { headers: { "cache-control": "no-store" } });
      case "/metrics":
        if (deps.metrics) return metricsResponse(deps.metrics(), head);
    }
    return serveStatic(deps, path, req.method, host);
  };
}

async function serveStatic(
  deps: RouteDeps,
  path: string,
  method: string,
  host: string | null,
): Promise<Response> {
  const hook = deps.hooks.staticRequest;
  if (hook) {
    // The hook sees the path the built-in server would use, or nothing at all.
    const checked = normaliseRequestPath(path);
    if (!checked.ok) {
      return checked.status === 400 ? errorPage(400, "Bad Request") : errorPage(403, "Forbidden");
    }
    const r = await deps.runner.run("staticRequest", () => hook(checked.path), staticResultSchema);
    if (!r.ok) return errorPage(500, "Internal Server Error");
    if (r.value) return toResponse(r.value, method);
  }
  if (!deps.files) return errorPage(404, "Not Found");
  const res = await deps.files.serve(path, method);
  // Files from a static directory get nosniff only (from the file server): a CSP would break them.
  if (deps.builtinPage) {
    for (const [k, v] of Object.entries(pageSecurityHeaders(host, deps.publicOrigins))) {
      res.headers.set(k, v);
    }
  }
  return res;
}

function toResponse(result: StaticResult, method: string): Response {
  if (result instanceof Response) return result;
  const [type, content] = result;
  return new Response(method === "HEAD" ? null : content as BodyInit, {
    headers: { "content-type": type },
  });
}
