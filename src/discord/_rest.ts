/**
 * The one Discord REST helper of this package, over `fetch`. Both the
 * gateway client (`GET /gateway/bot`, with a bot token) and the OAuth2
 * validator (`GET /users/@me…`, with a viewer's bearer token) use
 * {@link discordGet}, so a 429, a timeout or an unreadable body is read the
 * same way everywhere, against the same default API base (v10).
 *
 * @module
 */
import { jitteredBackoff } from "../_backoff.ts";
import { gatewayBotSchema } from "./_schemas.ts";
import { errorText } from "../_errors.ts";

/** The public Discord API base for v10. */
export const DEFAULT_API_BASE = "https://discord.com/api/v10";

/** Where to connect when `GET /gateway/bot` is not available (and the API base is Discord's own). */
export const DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg";

/** Back-off when a 429 carries no usable delay. */
const DEFAULT_RETRY_AFTER_MS = 5_000;
/** Longest back-off honoured, so a nonsense value cannot stall a caller for days. */
const MAX_RETRY_AFTER_MS = 60 * 60_000;

/** Thrown when Discord answers with an HTTP error. */
export class DiscordHttpError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** Create the error. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "DiscordHttpError";
    this.status = status;
  }
}

/** A `fetch`-compatible function. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** What one GET to Discord came to. {@link discordGet} never throws; it returns one of these. */
export type DiscordAnswer =
  | { kind: "ok"; status: number; body: unknown }
  | {
    kind: "rate-limited";
    /** How long Discord asked to wait: body `retry_after`, else `Retry-After`, else `X-RateLimit-Reset-After`. */
    retryAfterMs: number;
    /** Whether the limit covers every route (body `global`, `X-RateLimit-Global`, `X-RateLimit-Scope: global`). */
    global: boolean;
    /** `X-RateLimit-Scope` in lower case (`user`, `shared`, `global`), when sent. */
    scope: string | undefined;
  }
  | { kind: "http"; status: number }
  | { kind: "bad-body"; status: number; error: unknown }
  | { kind: "network"; error: unknown; timedOut: boolean };

/** Options of {@link discordGet}. */
export interface DiscordGetOptions {
  /** Abort the request (and the body read) when this fires. */
  signal?: AbortSignal;
  /** Deadline for this request, ms. */
  timeoutMs?: number;
}

/** Whether `apiBase` is Discord's own API (only then may a failure fall back to Discord's public gateway). */
export function isDiscordApiBase(apiBase: string): boolean {
  try {
    const u = new URL(apiBase);
    const h = u.hostname.toLowerCase();
    return u.protocol === "https:" &&
      (h === "discord.com" || h.endsWith(".discord.com") || h === "discordapp.com" ||
        h.endsWith(".discordapp.com"));
  } catch {
    return false;
  }
}

/** Join an API base and a route without doubling slashes. */
export function apiUrl(apiBase: string, route: string): string {
  return `${apiBase.replace(/\/+$/, "")}${route}`;
}

/** One line describing a non-ok answer (never contains a token). */
export function describeAnswer(a: Exclude<DiscordAnswer, { kind: "ok" }>): string {
  switch (a.kind) {
    case "rate-limited":
      return `HTTP 429 (rate limited${
        a.global ? ", global" : ""
      }; retry after ${a.retryAfterMs} ms)`;
    case "http":
      return `HTTP ${a.status}`;
    case "bad-body":
      return `HTTP ${a.status} with an unreadable body (${errorText(a.error, true)})`;
    case "network":
      return a.timedOut ? "no answer in time" : `request failed (${errorText(a.error, true)})`;
  }
}

/**
 * GET `url` from Discord with `Authorization: authorization`; the body is
 * always consumed. A 2xx is parsed as JSON; a 429 is turned into a wait and
 * a scope; anything else is classified. Never throws.
 *
 * @example
 * ```ts
 * import { discordGet } from "./_rest.ts";
 *
 * const fake = () =>
 *   Promise.resolve(Response.json({ retry_after: 1.5, global: true }, { status: 429 }));
 * const a = await discordGet(fake, "http://127.0.0.1/api/v10/users/@me", "Bearer x");
 * if (a.kind !== "rate-limited" || a.retryAfterMs !== 1500 || !a.global) throw new Error("429");
 * ```
 */
export async function discordGet(
  fetcher: FetchLike,
  url: string,
  authorization: string,
  options: DiscordGetOptions = {},
): Promise<DiscordAnswer> {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    ctl.abort(new Error(`no answer within ${options.timeoutMs} ms`));
  }, options.timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetcher(url, {
        headers: {
          authorization,
          accept: "application/json",
          "user-agent": "DiscordBot (https://github.com/d-zone-org, 0.1) dback",
        },
        signal: ctl.signal,
      });
    } catch (error) {
      return { kind: "network", error, timedOut: timedOut || options.signal?.aborted === true };
    }
    if (res.status === 429) {
      let body: unknown;
      try {
        body = JSON.parse(await res.text());
      } catch {
        body = undefined;
      }
      const scope = res.headers.get("x-ratelimit-scope")?.trim().toLowerCase() || undefined;
      const flagged = typeof body === "object" && body !== null &&
        (body as { global?: unknown }).global === true;
      return {
        kind: "rate-limited",
        retryAfterMs: retryAfterMs(body, res.headers),
        global: flagged || scope === "global" || res.headers.has("x-ratelimit-global"),
        scope,
      };
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      return { kind: "http", status: res.status };
    }
    try {
      return { kind: "ok", status: res.status, body: JSON.parse(await res.text()) };
    } catch (error) {
      if (ctl.signal.aborted) {
        return { kind: "network", error, timedOut: timedOut || options.signal?.aborted === true };
      }
      return { kind: "bad-body", status: res.status, error };
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** The wait a 429 asks for: body `retry_after` (s), else `Retry-After`, else `X-RateLimit-Reset-After`. */
function retryAfterMs(body: unknown, headers: Headers): number {
  let seconds: number | undefined;
  const raw = typeof body === "object" && body !== null
    ? (body as { retry_after?: unknown }).retry_after
    : undefined;
  if (typeof raw === "number" && Number.isFinite(raw) && raw >= 0) seconds = raw;
  for (const name of ["retry-after", "x-ratelimit-reset-after"]) {
    if (seconds !== undefined) break;
    const h = headers.get(name)?.trim();
    const n = h ? Number(h) : NaN;
    if (Number.isFinite(n) && n >= 0) seconds = n;
  }
  const ms = seconds === undefined ? DEFAULT_RETRY_AFTER_MS : Math.ceil(seconds * 1000);
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** `session_start_limit` of `GET /gateway/bot`, in ms. */
export interface SessionStartLimit {
  /** IDENTIFYs allowed per reset period. */
  total: number;
  /** IDENTIFYs left in this period. */
  remaining: number;
  /** When the period ends, ms from when the answer arrived. */
  resetAfterMs: number;
  /** How many shards may IDENTIFY in the same 5 s slot (shard id modulo this is the bucket). */
  maxConcurrency: number;
}

/** What `GET /gateway/bot` says. */
export interface GatewayBotInfo {
  /** Where to connect. */
  url: string;
  /** Recommended shard count, when given. */
  shards?: number;
  /** IDENTIFY budget, when given. */
  sessionStartLimit?: SessionStartLimit;
}

/** Options of {@link fetchGatewayBot}. */
export interface FetchGatewayBotOptions {
  /** Deadline for each request, ms. Default 10000. */
  timeoutMs?: number;
  /** Requests made at most (429, 5xx and network failures are retried). Default 4. */
  attempts?: number;
  /** First back-off after a 5xx or network failure, ms; doubles per attempt. Default 1000. */
  retryBaseMs?: number;
  /** Longest wait honoured between attempts (a longer `retry_after` ends the attempts), ms. Default 60000. */
  maxWaitMs?: number;
  /** Stops waiting and retrying (e.g. the client was closed). */
  signal?: AbortSignal;
  /** Told about each failed attempt before the wait. */
  onRetry?: (failure: string, waitMs: number) => void;
}

/**
 * Ask `GET {apiBase}/gateway/bot` where to connect, how many shards Discord
 * recommends and how many IDENTIFYs are left. A 429 waits `retry_after`
 * (body or `Retry-After`); a 5xx, a timeout or a network failure waits a
 * growing back-off; both are retried up to `attempts` times. Throws a
 * {@link DiscordHttpError} whose message names the last HTTP failure
 * (status 401 means the token is wrong), or an `Error` for network and shape
 * problems.
 *
 * @example
 * ```ts
 * import { fetchGatewayBot } from "./_rest.ts";
 *
 * const fake = () =>
 *   Promise.resolve(Response.json({
 *     url: "wss://gateway.example",
 *     shards: 2,
 *     session_start_limit: { total: 1000, remaining: 998, reset_after: 1000, max_concurrency: 1 },
 *   }));
 * const info = await fetchGatewayBot(fake, "http://127.0.0.1/api/v10", "token");
 * if (info.shards !== 2 || info.sessionStartLimit?.remaining !== 998) throw new Error("info");
 * ```
 */
export async function fetchGatewayBot(
  fetcher: FetchLike,
  apiBase: string,
  token: string,
  options: FetchGatewayBotOptions = {},
): Promise<GatewayBotInfo> {
  const url = apiUrl(apiBase, "/gateway/bot");
  const attempts = Math.max(1, options.attempts ?? 4);
  const base = options.retryBaseMs ?? 1000;
  const maxWait = options.maxWaitMs ?? 60_000;
  let last = "";
  for (let i = 1; i <= attempts; i++) {
    const a = await discordGet(fetcher, url, `Bot ${token}`, {
      timeoutMs: options.timeoutMs ?? 10_000,
      signal: options.signal,
    });
    if (options.signal?.aborted) throw new Error(`GET ${url} was cancelled`);
    if (a.kind === "ok") {
      const parsed = gatewayBotSchema.safeParse(a.body);
      if (!parsed.success) throw new Error(`GET ${url} answered without a url`);
      const d = parsed.data;
      const l = d.session_start_limit;
      return {
        url: d.url,
        shards: d.shards,
        sessionStartLimit: l
          ? {
            total: l.total,
            remaining: l.remaining,
            resetAfterMs: l.reset_after,
            maxConcurrency: l.max_concurrency,
          }
          : undefined,
      };
    }
    last = describeAnswer(a);
    const status = a.kind === "http" || a.kind === "bad-body"
      ? a.status
      : a.kind === "rate-limited"
      ? 429
      : undefined;
    // 4xx other than 429 is Discord's final word (401: bad token).
    const retriable = a.kind === "network" || a.kind === "rate-limited" ||
      (status !== undefined && status >= 500);
    const wait = a.kind === "rate-limited" ? a.retryAfterMs : jitteredBackoff(i, base, Infinity);
    if (!retriable || i === attempts || wait > maxWait) {
      const msg = `GET ${url} failed: ${last}${i > 1 ? ` (after ${i} attempts)` : ""}` +
        (retriable && wait > maxWait && i < attempts ? `; Discord asked to wait ${wait} ms` : "");
      if (status !== undefined) throw new DiscordHttpError(status, msg);
      throw new Error(msg);
    }
    options.onRetry?.(last, wait);
    await sleep(wait, options.signal);
    if (options.signal?.aborted) throw new Error(`GET ${url} was cancelled`);
  }
  throw new Error(`GET ${url} failed: ${last}`);
}

/**
 * Ask `GET {apiBase}/gateway/bot` where to connect (see {@link fetchGatewayBot}).
 */
export async function fetchGatewayUrl(
  fetcher: FetchLike,
  apiBase: string,
  token: string,
  timeoutMs = 10_000,
): Promise<string> {
  return (await fetchGatewayBot(fetcher, apiBase, token, { timeoutMs, attempts: 1 })).url;
}

/** Build the WebSocket URL for Gateway v10 with JSON encoding from a base URL. */
export function gatewayWsUrl(base: string): string {
  const url = new URL(base);
  url.searchParams.set("v", "10");
  url.searchParams.set("encoding", "json");
  url.searchParams.delete("compress");
  return url.toString();
}

/** Wait `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
