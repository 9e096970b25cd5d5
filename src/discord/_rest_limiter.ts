/**
 * The bot's REST calls (info replies, the state a resumed session rebuilds)
 * through one limiter that keeps to Discord's rate limits instead of finding
 * them by 429s:
 *
 * - per route (method + path with the major parameter kept, as Discord
 *   buckets them): requests run one at a time, and wait for the bucket's
 *   reset when `X-RateLimit-Remaining` reached 0;
 * - globally: at most `perSecond` requests in any second, and after a global
 *   429 no request at all until its `retry_after` has passed;
 * - a 429 (either kind) is waited out as Discord says and retried (up to 20
 *   times per call); a 5xx or a network failure waits `retryBaseMs` and is
 *   retried, up to `attempts` failures per call.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import type { Logger } from "../log.ts";
import { apiUrl, type FetchLike, sleep } from "./_rest.ts";

/** Time, for the limiter's waits; a test passes a fake one. */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Resolve after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The real clock. */
export const realClock: Clock = { now: () => performance.now(), sleep };

/** Options of {@link RestLimiter}. */
export interface RestLimiterOptions {
  /** REST API base. */
  apiBase: string;
  /** Bot token (without `Bot `). */
  token: string;
  /** `fetch` for the requests. */
  fetch: FetchLike;
  /** Logger (retries and failures). */
  log: Logger;
  /** Clock. Default the real one. */
  clock?: Clock;
  /** Failed requests (5xx, network) per call before giving up; 429s do not count. Default 4. */
  attempts?: number;
  /** Requests per second at most, all routes together. Default 40 (Discord allows 50). */
  perSecond?: number;
  /** Deadline of one request, ms. Default 10000. */
  timeoutMs?: number;
  /** Wait after a 5xx or network failure before the retry, ms. Default 1000. */
  retryBaseMs?: number;
}

/** What a call came to. It never throws. */
export type RestResult =
  | { ok: true; status: number; body: unknown }
  | { ok: false; status?: number; reason: string };

/** Back-off when a 429 carries no usable delay, ms. */
const DEFAULT_RETRY_AFTER_MS = 1000;
/** Longest wait honoured, ms (a nonsense header must not stall replies for days). */
const MAX_WAIT_MS = 60_000;
/** Route buckets remembered before the reset ones are swept. */
const MAX_BUCKETS = 1000;
/** 429s waited out at most per call. */
const MAX_LIMITED = 20;
const TAG = "discord";

/**
 * Discord's bucket key of a route: the method and the path, with ids after
 * `channels`, `guilds` and `webhooks` kept (major parameters) and other ids
 * folded.
 *
 * @example
 * ```ts
 * import { routeKey } from "./_rest_limiter.ts";
 * const k = routeKey("DELETE", "/channels/123/messages/456");
 * if (k !== "DELETE /channels/123/messages/:id") throw new Error(k);
 * ```
 */
export function routeKey(method: string, path: string): string {
  const parts = path.split("?")[0].split("/");
  const out = parts.map((p, i) =>
    /^\d+$/.test(p) && !["channels", "guilds", "webhooks"].includes(parts[i - 1]) ? ":id" : p
  );
  return `${method} ${out.join("/")}`;
}

/**
 * One bot's REST calls, within Discord's rate limits.
 *
 * @example
 * ```ts
 * import { Logger } from "../log.ts";
 * import { RestLimiter } from "./_rest_limiter.ts";
 *
 * let calls = 0;
 * const rest = new RestLimiter({
 *   apiBase: "http://127.0.0.1:9/api/v10",
 *   token: "t",
 *   log: new Logger("silent"),
 *   // The first answer is a 429 of 10 ms; the retry succeeds.
 *   fetch: () =>
 *     Promise.resolve(
 *       ++calls === 1
 *         ? Response.json({ retry_after: 0.01, global: false }, { status: 429 })
 *         : Response.json({ id: "1" }),
 *     ),
 * });
 * const r = await rest.request("POST", "/channels/5/messages", { content: "hi" });
 * if (!r.ok || calls !== 2) throw new Error(`${calls} calls`);
 * ```
 */
export class RestLimiter {
  #o: RestLimiterOptions;
  #clock: Clock;
  #abort = new AbortController();
  /** The tail of each route's chain: one request per route at a time. */
  #chains = new Map<string, Promise<unknown>>();
  /** Per route: requests left in the bucket and when it resets (clock ms). */
  #buckets = new Map<string, { remaining: number; resetAt: number }>();
  #globalUntil = 0;
  #stamps: number[] = [];

  /** A limiter; nothing is sent until {@link RestLimiter.request}. */
  constructor(options: RestLimiterOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
  }

  /** When the last global 429 ends (clock ms; in the past when none runs). */
  get globalUntil(): number {
    return this.#globalUntil;
  }

  /** `method path` with a JSON `body`, in turn with the route's other calls, retried as the limits allow. */
  request(method: "GET" | "POST", path: string, body?: unknown): Promise<RestResult> {
    const key = routeKey(method, path);
    const run = (this.#chains.get(key) ?? Promise.resolve()).then(() =>
      this.#attempt(key, method, path, body)
    );
    const tail = run.catch(() => {});
    this.#chains.set(key, tail);
    void tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key);
    });
    return run;
  }

  /** Give up every waiting and running call (they resolve as failures). */
  stop(): void {
    this.#abort.abort(new Error("stopped"));
  }

  async #attempt(key: string, method: string, path: string, body: unknown): Promise<RestResult> {
    const attempts = Math.max(1, this.#o.attempts ?? 4);
    let failures = 0;
    let limited = 0;
    while (true) {
      await this.#turn(key);
      if (this.#abort.signal.aborted) return { ok: false, reason: "stopped" };
      const answer = await this.#send(method, path, body);
      if (answer.kind === "done") return answer.result;
      // A 429 is Discord saying "later", not a failure: it is waited out, within reason.
      const spent = answer.limited ? ++limited >= MAX_LIMITED : ++failures >= attempts;
      if (spent || this.#abort.signal.aborted) return { ok: false, reason: answer.reason };
      this.#o.log[answer.limited ? "debug" : "warn"](
        `${method} ${key.split(" ")[1]}: ${answer.reason}; retrying`,
        TAG,
      );
      await this.#sleep(answer.waitMs);
    }
  }

  /** Wait until the global limit, the route's bucket and the per-second cap all allow one more request. */
  async #turn(key: string): Promise<void> {
    const perSecond = this.#o.perSecond ?? 40;
    while (!this.#abort.signal.aborted) {
      const now = this.#clock.now();
      while (this.#stamps.length && this.#stamps[0] <= now - 1000) this.#stamps.shift();
      let bucket = this.#buckets.get(key);
      if (bucket && bucket.resetAt <= now) {
        this.#buckets.delete(key);
        bucket = undefined;
      }
      const waits = [
        this.#globalUntil - now,
        bucket && bucket.remaining <= 0 ? bucket.resetAt - now : 0,
        this.#stamps.length >= perSecond ? this.#stamps[0] + 1000 - now : 0,
      ];
      const wait = Math.max(...waits);
      if (wait <= 0) {
        this.#stamps.push(now);
        if (bucket) bucket.remaining--;
        return;
      }
      await this.#sleep(wait);
    }
  }

  #sleep(ms: number): Promise<void> {
    return this.#clock.sleep(Math.min(ms, MAX_WAIT_MS), this.#abort.signal);
  }

  async #send(
    method: string,
    path: string,
    body: unknown,
  ): Promise<
    | { kind: "done"; result: RestResult }
    | { kind: "retry"; reason: string; waitMs: number; limited?: boolean }
  > {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(this.#abort.signal.reason);
    this.#abort.signal.addEventListener("abort", onAbort, { once: true });
    const timeoutMs = this.#o.timeoutMs ?? 10_000;
    const timer = setTimeout(
      () => ctl.abort(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const key = routeKey(method, path);
    try {
      let res: Response;
      try {
        res = await this.#o.fetch(apiUrl(this.#o.apiBase, path), {
          method,
          headers: {
            authorization: `Bot ${this.#o.token}`,
            "content-type": "application/json",
            "user-agent": "DiscordBot (https://github.com/d-zone-org, 0.1) dback",
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: ctl.signal,
        });
      } catch (err) {
        return {
          kind: "retry",
          reason: `request failed (${errorText(err)})`,
          waitMs: this.#backoff(),
        };
      }
      const text = await res.text().catch(() => "");
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      this.#track(key, res.headers);
      if (res.status === 429) {
        const o = typeof json === "object" && json !== null ? json as Record<string, unknown> : {};
        const secs = typeof o.retry_after === "number" && o.retry_after >= 0
          ? o.retry_after
          : Number(res.headers.get("retry-after") ?? NaN);
        const waitMs = Number.isFinite(secs) ? Math.ceil(secs * 1000) : DEFAULT_RETRY_AFTER_MS;
        const global = o.global === true || res.headers.has("x-ratelimit-global") ||
          res.headers.get("x-ratelimit-scope")?.toLowerCase() === "global";
        const until = this.#clock.now() + Math.min(waitMs, MAX_WAIT_MS);
        if (global) this.#globalUntil = Math.max(this.#globalUntil, until);
        else this.#buckets.set(key, { remaining: 0, resetAt: until });
        return {
          kind: "retry",
          reason: `HTTP 429 (${global ? "global, " : ""}retry after ${waitMs} ms)`,
          waitMs: 0, // #turn waits for the limit just recorded
          limited: true,
        };
      }
      if (res.status >= 500) {
        return { kind: "retry", reason: `HTTP ${res.status}`, waitMs: this.#backoff() };
      }
      if (!res.ok) {
        return {
          kind: "done",
          result: { ok: false, status: res.status, reason: `HTTP ${res.status}` },
        };
      }
      return { kind: "done", result: { ok: true, status: res.status, body: json } };
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onAbort);
    }
  }

  #backoff(): number {
    return this.#o.retryBaseMs ?? 1000;
  }

  /** Remember what the answer's rate-limit headers say of the route's bucket. */
  #track(key: string, h: Headers): void {
    const remaining = Number(h.get("x-ratelimit-remaining") ?? NaN);
    const resetAfter = Number(h.get("x-ratelimit-reset-after") ?? NaN);
    if (!Number.isFinite(remaining) || !Number.isFinite(resetAfter)) return;
    const now = this.#clock.now();
    // One entry per route and channel: forget the ones already reset, so the map stays small.
    if (this.#buckets.size >= MAX_BUCKETS) {
      for (const [k, b] of this.#buckets) if (b.resetAt <= now) this.#buckets.delete(k);
    }
    const resetAt = now + Math.min(Math.ceil(resetAfter * 1000), MAX_WAIT_MS);
    this.#buckets.set(key, { remaining, resetAt });
  }
}
