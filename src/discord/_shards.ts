/**
 * Sharding plan: how many gateway sessions to open, from what
 * `GET /gateway/bot` recommends. Discord requires shards from 2,500 guilds
 * on; the same answer names where to connect and the IDENTIFY budget
 * (`session_start_limit`: IDENTIFYs left today and `max_concurrency`, the
 * shards that may IDENTIFY in one 5-second slot, bucket
 * `shard_id % max_concurrency`). The source hands that budget to one shared
 * `IdentifyBudget`, which spaces the shards' IDENTIFYs.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import {
  DEFAULT_GATEWAY_URL,
  DiscordHttpError,
  fetchGatewayBot,
  type FetchGatewayBotOptions,
  type FetchLike,
  isDiscordApiBase,
  type SessionStartLimit,
} from "./_rest.ts";
import { DiscordGatewayError, FATAL_CLOSE_CODES, type GatewayTiming } from "./_gateway_types.ts";

/** Most shards the source opens (a larger recommendation is refused, not obeyed). */
export const MAX_SHARDS = 1024;

/** What `GET /gateway/bot` says about sharding. */
export interface ShardPlan {
  /** Number of shards. */
  count: number;
  /** Shards that may identify in the same slot. */
  maxConcurrency: number;
  /** Where to connect, when asked of the API. */
  url?: string;
  /** The IDENTIFY budget, when Discord sent one. */
  sessionStartLimit?: SessionStartLimit;
}

/**
 * Ask `GET {apiBase}/gateway/bot` (with {@link fetchGatewayBot}'s retries,
 * `retry_after` and deadlines) for the recommended shard count, the gateway
 * URL and the IDENTIFY budget. Throws what `fetchGatewayBot` throws, and an
 * `Error` for a count above {@link MAX_SHARDS}.
 *
 * @example
 * ```ts
 * import { fetchShardPlan } from "./_shards.ts";
 *
 * const fake = () =>
 *   Promise.resolve(Response.json({
 *     url: "wss://gateway.example",
 *     shards: 2,
 *     session_start_limit: { total: 1000, remaining: 7, reset_after: 1000, max_concurrency: 1 },
 *   }));
 * const plan = await fetchShardPlan(fake, "http://127.0.0.1/api/v10", "token");
 * if (plan.count !== 2 || plan.sessionStartLimit?.remaining !== 7) throw new Error("plan");
 * ```
 */
export async function fetchShardPlan(
  fetcher: FetchLike,
  apiBase: string,
  token: string,
  options: FetchGatewayBotOptions = {},
): Promise<ShardPlan> {
  const info = await fetchGatewayBot(fetcher, apiBase, token, options);
  const count = info.shards ?? 1;
  if (count > MAX_SHARDS) {
    throw new Error(
      `GET /gateway/bot recommends ${count} shards; at most ${MAX_SHARDS} are supported`,
    );
  }
  return {
    count,
    maxConcurrency: info.sessionStartLimit?.maxConcurrency ?? 1,
    url: info.url,
    sessionStartLimit: info.sessionStartLimit,
  };
}

/**
 * The shard a guild lives on: `(guild_id >> 22) % count`.
 *
 * @example
 * ```ts
 * import { shardOf } from "./_shards.ts";
 * if (shardOf(String(5n << 22n), 2) !== 1) throw new Error("unexpected");
 * ```
 */
export function shardOf(guildId: string, count: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(count));
}

/** What {@link planShards} needs. */
export interface PlanShardsOptions {
  /** Bot token. */
  token: string;
  /** REST API base. */
  apiBase: string;
  /** Fixed gateway URL, if any. */
  gatewayUrl?: string;
  /** A fixed shard count, or `"auto"`. */
  shards: number | "auto";
  /** `fetch` for the request. */
  fetch: FetchLike;
  /** Attempts, back-off and deadline of the request. */
  timing?: GatewayTiming;
  /** Cancels the request. */
  signal: AbortSignal;
  /** Log lines. */
  log: (level: "info" | "warn", message: string) => void;
}

/**
 * The plan a source starts with: a fixed count as given (asking Discord
 * anyway for the URL and budget when it is above 1 and no gateway URL is
 * fixed), else Discord's recommendation. A failure with Discord's own API
 * falls back to its public gateway; a 401 or a failure elsewhere throws a
 * {@link DiscordGatewayError} (the token never goes to Discord's gateway
 * when the API base is another).
 */
export async function planShards(o: PlanShardsOptions): Promise<ShardPlan> {
  const fixed = typeof o.shards === "number" ? o.shards : undefined;
  const plan: ShardPlan = { count: fixed ?? 1, maxConcurrency: 1 };
  // Ask once for every shard (the count, the URL, the IDENTIFY budget) rather
  // than once per shard; a single unsharded client asks on its own.
  if (fixed !== undefined && (fixed <= 1 || o.gatewayUrl)) return plan;
  const t = o.timing ?? {};
  try {
    const asked = await fetchShardPlan(o.fetch, o.apiBase, o.token, {
      attempts: t.restAttempts,
      retryBaseMs: t.restRetryBaseMs,
      timeoutMs: t.restTimeoutMs,
      signal: o.signal,
      onRetry: (failure, wait) =>
        o.log("warn", `GET /gateway/bot: ${failure}; retrying in ${wait} ms`),
    });
    const got = { ...asked, count: fixed ?? asked.count };
    const left = got.sessionStartLimit
      ? `, ${got.sessionStartLimit.remaining} IDENTIFYs left today`
      : "";
    o.log(
      "info",
      `${got.count} shard(s) (Discord recommends ${asked.count}), ` +
        `${got.maxConcurrency} may identify at once${left} (GET /gateway/bot)`,
    );
    return got;
  } catch (err) {
    const what = `cannot ask ${o.apiBase}/gateway/bot for the gateway and shard count: ${
      errorText(err)
    }`;
    if (err instanceof DiscordHttpError && err.status === 401) {
      throw new DiscordGatewayError(`${what}. ${FATAL_CLOSE_CODES[4004]}`, 4004);
    }
    if (!isDiscordApiBase(o.apiBase)) {
      // Never send the token to Discord's real gateway when the API base is elsewhere.
      throw new DiscordGatewayError(what, err instanceof DiscordHttpError ? err.status : undefined);
    }
    // Discord itself is having a bad day: its public gateway, and one shard unless
    // the count is fixed (Discord closes with 4011 if the bot really needs more).
    o.log("warn", `${what}; using ${DEFAULT_GATEWAY_URL} with ${plan.count} shard(s)`);
    return { ...plan, url: DEFAULT_GATEWAY_URL };
  }
}
