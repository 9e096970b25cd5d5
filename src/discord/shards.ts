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
import { fetchGatewayBot, type FetchGatewayBotOptions, type FetchLike } from "./rest.ts";
import type { SessionStartLimit } from "./rest.ts";

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
 * import { fetchShardPlan } from "./shards.ts";
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
 * import { shardOf } from "./shards.ts";
 * if (shardOf(String(5n << 22n), 2) !== 1) throw new Error("unexpected");
 * ```
 */
export function shardOf(guildId: string, count: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(count));
}
