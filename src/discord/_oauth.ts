/**
 * A built-in `validateDiscordUser` hook that asks Discord itself: the
 * OAuth2 access token must belong to the user the client claims to be, and
 * that user must be a member of the Discord server being joined.
 *
 * It fails closed: any answer other than a clear "yes" from Discord (an
 * error status, a timeout, a network failure, a rate limit, a malformed
 * body, a throwing membership hook, a spent budget) refuses the join.
 * Results are cached per (token hash, user id, server id) so a reconnect
 * storm costs Discord one lookup; lookups are bounded by a global
 * concurrency and rate budget so no flood of tokens is amplified into a
 * flood of requests to Discord; Discord's 429 answers are respected with the
 * scope Discord gives them. Tokens are never logged, never used as cache keys
 * (only their SHA-256), and never appear in diagnostics. Requests go through
 * the package's one Discord REST helper (`_rest.ts`).
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 * import { discordOAuthValidator } from "@dzone/dback/discord";
 *
 * // A stand-in for Discord that knows no token: every validation is refused.
 * const fetch = () => Promise.resolve(Response.json({ message: "401: Unauthorized" }, { status: 401 }));
 * const validateDiscordUser = discordOAuthValidator({ fetch });
 * const server = new WebSocketServer({ callbacks: { validateDiscordUser } });
 * const ok = await server.callbacks.validateDiscordUser!("token", { id: "1", username: "a" }, "2");
 * if (ok !== false) throw new Error("an unknown token must be refused");
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { DiscordUser } from "../protocol.ts";
import { errorText } from "../_errors.ts";
import { describeZodError, parseOrThrow } from "../_zod.ts";
import { apiUrl, DEFAULT_API_BASE, discordGet } from "./_rest.ts";

export type { DiscordUser } from "../protocol.ts";
export type { DiscordOAuthOptions, DiscordUserValidator } from "./_oauth_types.ts";
import type { DiscordOAuthOptions, DiscordUserValidator } from "./_oauth_types.ts";

const ME = "/users/@me";
const GUILDS = "/users/@me/guilds";
/** Largest page Discord serves for `/users/@me/guilds`. */
const GUILD_PAGE = 200;
/** Pages of guilds read at most (1000 guilds; Discord caps users at 200). */
const MAX_GUILD_PAGES = 5;
/** Least time between two "budget spent" reports, so a flood does not flood the log. */
const BUDGET_REPORT_MS = 1000;
/** An OAuth2 bearer token: visible ASCII, no spaces, bounded. */
const TOKEN_RE = /^[\x21-\x7e]{1,4096}$/;
const PREFIX = "discordOAuthValidator:";

const optionsSchema = z.object({
  apiBase: z.string().refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === "https:" || u.protocol === "http:";
    } catch {
      return false;
    }
  }, "must be an http(s) URL").default(DEFAULT_API_BASE),
  cacheTtlMs: z.number().int().nonnegative().default(60_000),
  negativeCacheTtlMs: z.number().int().nonnegative().default(10_000),
  timeoutMs: z.number().int().positive().default(4000),
  maxCacheEntries: z.number().int().positive().default(10_000),
  maxConcurrentLookups: z.number().int().positive().default(8),
  maxLookupsPerMinute: z.number().int().positive().default(300),
});

const meSchema = z.looseObject({ id: z.string().min(1) });
const guildsSchema = z.array(z.looseObject({ id: z.string().min(1) }));

/** A verdict: `true` allow, `false` Discord said no (cached briefly), `null` failure (not cached). */
type Verdict = boolean | null;
/** One request's outcome. */
type Answer = { ok: true; body: unknown } | { ok: false; verdict: false | null };

const encoder = new TextEncoder();

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Wait for `promise`, but reject as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      promise.catch(() => {});
      return reject(signal.reason);
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Build a `validateDiscordUser` hook that checks a Discord OAuth2 access
 * token against Discord's API.
 *
 * For each call it asks `GET {apiBase}/users/@me` with
 * `Authorization: Bearer <token>` and refuses unless Discord answers 2xx with
 * a user whose `id` equals the `id` the client claimed. Membership is then
 * decided by `options.isMember` when given, otherwise by
 * `GET {apiBase}/users/@me/guilds` (the token needs the `guilds` scope;
 * pages of 200 are followed with `after`, up to 1000 guilds) containing
 * `serverId`.
 *
 * - Answers are cached per (SHA-256 of the token, user id, server id):
 *   "allowed" for `cacheTtlMs`, Discord's definite "no" for
 *   `negativeCacheTtlMs`; failures are not cached. The cache holds at most
 *   `maxCacheEntries`, oldest evicted first. Concurrent identical calls share
 *   one lookup.
 * - A global budget bounds what a flood of distinct tokens can cost
 *   Discord: at most `maxConcurrentLookups` lookups at once and
 *   `maxLookupsPerMinute` started per rolling minute. Beyond it a call is
 *   refused at once without a request (cache hits and shared lookups cost
 *   nothing). Budget refusals are reported at most once a second.
 * - A 429 refuses that attempt and starts a back-off of `retry_after`
 *   seconds (body; else the `Retry-After` header; capped at an hour). Like
 *   Discord's own buckets, the back-off covers that route for that token
 *   only, unless Discord flags the limit as global (body `global: true`,
 *   `X-RateLimit-Global`, or `X-RateLimit-Scope: global`): then every call
 *   is refused without a request until it ends.
 * - Fails closed: a non-2xx answer, a network failure, a timeout
 *   (`timeoutMs` for the whole validation), a malformed body or a throwing
 *   `isMember` all resolve `false`. The returned function never rejects.
 * - The token is sent only to `apiBase` and never logged or passed to
 *   `onError`.
 *
 * Keep `timeoutMs` below the server's `callbackTimeoutMs` (defaults 4000
 * and 5000) so the validator, not the server, decides when to give up.
 *
 * @param options Endpoints, caching, deadline and hooks; all optional.
 * @returns A function for `callbacks.validateDiscordUser`.
 * @throws {TypeError} When an option is invalid.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 * import { discordOAuthValidator } from "@dzone/dback/discord";
 *
 * const server = new WebSocketServer({
 *   port: 0,
 *   callbacks: {
 *     getServerData: () => ({
 *       "123456789012345678": { id: "club", name: "The Club", passworded: true },
 *     }),
 *     validateDiscordUser: discordOAuthValidator({
 *       onError: (message) => console.warn(message),
 *     }),
 *   },
 * });
 * await server.start();
 * if (server.port === 0) throw new Error("not listening");
 * await server.stop();
 * ```
 */
export function discordOAuthValidator(options: DiscordOAuthOptions = {}): DiscordUserValidator {
  const settings = parseOrThrow(optionsSchema, {
    apiBase: options.apiBase,
    cacheTtlMs: options.cacheTtlMs,
    negativeCacheTtlMs: options.negativeCacheTtlMs,
    timeoutMs: options.timeoutMs,
    maxCacheEntries: options.maxCacheEntries,
    maxConcurrentLookups: options.maxConcurrentLookups,
    maxLookupsPerMinute: options.maxLookupsPerMinute,
  }, `${PREFIX} invalid options`);
  for (const name of ["isMember", "fetch", "onError"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(`${PREFIX} invalid options: ${name}: expected a function`);
    }
  }
  const apiBase = settings.apiBase;
  const fetchFn = options.fetch ?? globalThis.fetch;
  const { isMember, onError } = options;

  const cache = new Map<string, { allowed: boolean; expires: number }>();
  const inflight = new Map<string, Promise<boolean>>();
  /** Back-off deadlines (performance.now() ms), keyed by "*" (global) or route + token hash. */
  const backoff = new Map<string, number>();
  /** Lookups asking Discord now, and when the ones of the last minute started. */
  let active = 0;
  const starts: number[] = [];
  let refused = 0;
  let lastBudgetReport = -Infinity;

  const report = (message: string, token: string) => {
    if (!onError) return;
    const safe = token.length >= 4 ? message.split(token).join("[token]") : message;
    try {
      onError(`${PREFIX} ${safe}`);
    } catch {
      // A throwing sink must not turn a refusal into a rejection.
    }
  };

  const remember = (key: string, allowed: boolean) => {
    const ttl = allowed ? settings.cacheTtlMs : settings.negativeCacheTtlMs;
    if (ttl <= 0) return;
    cache.delete(key);
    while (cache.size >= settings.maxCacheEntries) {
      const oldest = cache.keys().next();
      if (oldest.done) break;
      cache.delete(oldest.value);
    }
    cache.set(key, { allowed, expires: performance.now() + ttl });
  };

  const backedOff = (route: string, tokenHash: string): boolean => {
    const now = performance.now();
    for (const key of ["*", `${route}#${tokenHash}`]) {
      const until = backoff.get(key);
      if (until === undefined) continue;
      if (until > now) return true;
      backoff.delete(key);
    }
    return false;
  };

  const startBackoff = (key: string, ms: number) => {
    const now = performance.now();
    if (backoff.size >= settings.maxCacheEntries) {
      for (const [k, until] of backoff) if (until <= now) backoff.delete(k);
      if (backoff.size >= settings.maxCacheEntries) {
        const oldest = backoff.keys().next();
        if (!oldest.done) backoff.delete(oldest.value);
      }
    }
    backoff.set(key, Math.max(backoff.get(key) ?? 0, now + ms));
  };

  /** One GET to Discord; never throws. */
  const get = async (
    route: string,
    query: string,
    token: string,
    tokenHash: string,
    signal: AbortSignal,
  ): Promise<Answer> => {
    if (backedOff(route, tokenHash)) return { ok: false, verdict: null };
    const a = await discordGet(fetchFn, apiUrl(apiBase, route + query), `Bearer ${token}`, {
      signal,
    });
    switch (a.kind) {
      case "ok":
        return { ok: true, body: a.body };
      case "network":
        if (a.timedOut || signal.aborted) {
          report(`${route}: no answer within ${settings.timeoutMs} ms`, token);
        } else report(`${route}: request failed (${errorText(a.error, true)})`, token);
        return { ok: false, verdict: null };
      case "bad-body":
        report(`${route}: unreadable body (${errorText(a.error, true)})`, token);
        return { ok: false, verdict: null };
      case "rate-limited": {
        // Discord's buckets are per route and token; only a global limit covers everyone.
        startBackoff(a.global ? "*" : `${route}#${tokenHash}`, a.retryAfterMs);
        report(
          `${route}: rate limited by Discord (${a.global ? "global" : a.scope ?? "route"}); ` +
            `refusing ${a.global ? "every token" : "this token"} for ${a.retryAfterMs} ms`,
          token,
        );
        return { ok: false, verdict: null };
      }
      case "http": {
        // 4xx is Discord's answer about this token (401 bad token, 403 missing
        // scope); 5xx and anything else is a failure worth retrying later.
        const definite = a.status >= 400 && a.status < 500;
        if (a.status !== 401) report(`${route}: Discord answered ${a.status}`, token);
        return { ok: false, verdict: definite ? false : null };
      }
    }
    return { ok: false, verdict: null };
  };

  /** Take one slot of the global budget; the reason when there is none. */
  const admit = (): string | null => {
    const now = performance.now();
    while (starts.length && starts[0] <= now - 60_000) starts.shift();
    if (active >= settings.maxConcurrentLookups) {
      return `${settings.maxConcurrentLookups} lookups already in flight`;
    }
    if (starts.length >= settings.maxLookupsPerMinute) {
      return `${settings.maxLookupsPerMinute} lookups in the last minute`;
    }
    starts.push(now);
    active++;
    return null;
  };

  const member = async (
    token: string,
    tokenHash: string,
    userId: string,
    serverId: string,
    signal: AbortSignal,
  ): Promise<Verdict> => {
    if (isMember) {
      try {
        const answer = await untilAborted(
          Promise.resolve().then(() => isMember(userId, serverId)),
          signal,
        );
        if (typeof answer !== "boolean") {
          report(`isMember returned ${typeof answer}, not a boolean`, token);
          return null;
        }
        return answer;
      } catch (err) {
        report(
          signal.aborted
            ? `isMember gave no answer within ${settings.timeoutMs} ms`
            : `isMember threw (${errorText(err, true)})`,
          token,
        );
        return null;
      }
    }
    let after: string | undefined;
    for (let page = 0; page < MAX_GUILD_PAGES; page++) {
      const query = `?limit=${GUILD_PAGE}${after ? `&after=${encodeURIComponent(after)}` : ""}`;
      const answer = await get(GUILDS, query, token, tokenHash, signal);
      if (!answer.ok) return answer.verdict;
      const guilds = guildsSchema.safeParse(answer.body);
      if (!guilds.success) {
        report(`${GUILDS}: malformed body (${describeZodError(guilds.error)})`, token);
        return null;
      }
      if (guilds.data.some((g) => g.id === serverId)) return true;
      if (guilds.data.length < GUILD_PAGE) return false;
      after = guilds.data[guilds.data.length - 1].id;
    }
    report(
      `${GUILDS}: server not among the first ${MAX_GUILD_PAGES * GUILD_PAGE} guilds; ` +
        "refusing (use isMember for users in more guilds)",
      token,
    );
    return false;
  };

  const decide = async (
    token: string,
    tokenHash: string,
    userId: string,
    serverId: string,
    signal: AbortSignal,
  ): Promise<Verdict> => {
    // Do not spend a /users/@me call when the guild list is known to be blocked.
    if (!isMember && backedOff(GUILDS, tokenHash)) return null;
    const me = await get(ME, "", token, tokenHash, signal);
    if (!me.ok) return me.verdict;
    const identity = meSchema.safeParse(me.body);
    if (!identity.success) {
      report(`${ME}: malformed body (${describeZodError(identity.error)})`, token);
      return null;
    }
    if (identity.data.id !== userId) return false;
    return await member(token, tokenHash, userId, serverId, signal);
  };

  const lookup = async (
    key: string,
    token: string,
    tokenHash: string,
    userId: string,
    serverId: string,
  ): Promise<boolean> => {
    // A call Discord would refuse anyway costs no budget.
    if (backedOff(ME, tokenHash) || (!isMember && backedOff(GUILDS, tokenHash))) return false;
    const full = admit();
    if (full !== null) {
      refused++;
      const now = performance.now();
      if (now - lastBudgetReport >= BUDGET_REPORT_MS) {
        lastBudgetReport = now;
        report(`validation budget spent (${full}); refused ${refused} without asking Discord`, "");
        refused = 0;
      }
      return false;
    }
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException("validation timed out", "TimeoutError")),
      settings.timeoutMs,
    );
    let verdict: Verdict;
    try {
      verdict = await decide(token, tokenHash, userId, serverId, controller.signal);
    } catch (err) {
      report(`unexpected failure (${errorText(err, true)})`, token);
      verdict = null;
    } finally {
      clearTimeout(timer);
      active--;
      // Whatever is still running (a late body, a slow isMember) is cut off.
      controller.abort();
    }
    if (verdict !== null) remember(key, verdict);
    return verdict === true;
  };

  return async (token: string, user: DiscordUser, serverId: string): Promise<boolean> => {
    try {
      if (typeof token !== "string" || !TOKEN_RE.test(token)) return false;
      const userId = user?.id;
      if (typeof userId !== "string" || userId === "" || typeof serverId !== "string") {
        return false;
      }
      const tokenHash = await sha256Hex(token);
      const key = `${tokenHash}\n${userId}\n${serverId}`;
      const hit = cache.get(key);
      if (hit) {
        if (hit.expires > performance.now()) return hit.allowed;
        cache.delete(key);
      }
      let pending = inflight.get(key);
      if (!pending) {
        pending = lookup(key, token, tokenHash, userId, serverId).finally(() =>
          inflight.delete(key)
        );
        inflight.set(key, pending);
      }
      return await pending;
    } catch (err) {
      report(
        `unexpected failure (${errorText(err, true)})`,
        typeof token === "string" ? token : "",
      );
      return false;
    }
  };
}
