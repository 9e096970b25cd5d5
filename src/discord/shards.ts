/**
 * Sharding plan: how many gateway sessions to open and in which order.
 * Discord requires shards from 2,500 guilds on; `GET /gateway/bot` names the
 * recommended count and `max_concurrency`, the number of shards that may
 * IDENTIFY in one 5-second window (bucket `shard_id % max_concurrency`).
 *
 * @module
 */
import { z } from "zod";
import { type FetchLike, getJson } from "./rest.ts";

/** What `GET /gateway/bot` says about sharding. */
export interface ShardPlan {
  /** Number of shards. */
  count: number;
  /** Shards that may identify in the same window. */
  maxConcurrency: number;
}

const gatewayBotShardsSchema = z.looseObject({
  shards: z.number().int().min(1).max(65_536).optional(),
  session_start_limit: z.looseObject({
    max_concurrency: z.number().int().min(1).max(1024).optional(),
  }).optional(),
});

/** Ask `GET {apiBase}/gateway/bot` for the recommended shard count and `max_concurrency`. */
export async function fetchShardPlan(
  fetcher: FetchLike,
  apiBase: string,
  token: string,
  timeoutMs = 10_000,
): Promise<ShardPlan> {
  const body = await getJson(
    fetcher,
    `${apiBase.replace(/\/+$/, "")}/gateway/bot`,
    `Bot ${token}`,
    timeoutMs,
  );
  const p = gatewayBotShardsSchema.safeParse(body);
  if (!p.success) throw new Error("GET /gateway/bot answered without a valid shards field");
  return {
    count: p.data.shards ?? 1,
    maxConcurrency: p.data.session_start_limit?.max_concurrency ?? 1,
  };
}

/**
 * The identify order: shards grouped into windows of `maxConcurrency`, one
 * per rate-limit bucket (`id % maxConcurrency`), in ascending id order.
 *
 * @example
 * ```ts
 * import { identifyWindows } from "./shards.ts";
 * const w = identifyWindows({ count: 5, maxConcurrency: 2 });
 * if (JSON.stringify(w) !== "[[0,1],[2,3],[4]]") throw new Error("unexpected");
 * ```
 */
export function identifyWindows(plan: ShardPlan): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < plan.count; i += plan.maxConcurrency) {
    const w: number[] = [];
    for (let id = i; id < Math.min(plan.count, i + plan.maxConcurrency); id++) w.push(id);
    out.push(w);
  }
  return out;
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
