/**
 * Horizontal scale-out over Redis: run several dback instances behind a load
 * balancer. Every instance serves viewers; exactly one at a time (the lease
 * holder) runs the data source and publishes its events; Redis carries the
 * events and holds the shared user maps. This is the only entry point that
 * loads a Redis client (ioredis); the core stays zod-only.
 *
 * ```ts ignore
 * import { MockSource, WebSocketServer } from "@dzone/dback";
 * import { redisCluster } from "@dzone/dback/redis";
 *
 * const cluster = redisCluster({ url: "redis://127.0.0.1:6379", source: new MockSource() });
 * const server = new WebSocketServer({ source: cluster.source, broker: cluster.broker });
 * await server.start();
 * ```
 *
 * @module
 */
import type { Broker } from "../broker.ts";
import type { DataSource } from "../source.ts";
import { Cluster } from "./_cluster.ts";
import type { ClusterStatus } from "./metrics.ts";
import type { ServerSnapshot } from "./_servers.ts";
import { parseClusterOptions, type RedisClusterOptions } from "./_settings.ts";
import { redisSessionStore, type SessionStore } from "./session_store.ts";
import { renderClusterMetrics } from "./metrics.ts";

export type { ClusterStatus } from "./metrics.ts";
export type { ServerSnapshot } from "./_servers.ts";
export type { RedisClusterOptions } from "./_settings.ts";
export {
  type DiscordSession,
  type FencedKv,
  redisSessionStore,
  type SessionStore,
} from "./session_store.ts";
export { renderClusterMetrics };

/** One instance's membership of a cluster: hand `source` and `broker` to the server. */
export interface RedisCluster {
  /** This instance's id (part of the lease token and of log lines). */
  readonly instanceId: string;
  /** The server's data source: user maps from the shared snapshot; runs the inner source while leader. */
  readonly source: DataSource;
  /** The server's broker: broadcasts go through Redis to every instance. */
  readonly broker: Broker;
  /** A Discord session store in Redis (writes only while this instance is the publisher). */
  readonly sessionStore: SessionStore;
  /**
   * The servers and user maps viewers last saw, from Redis: what a Discord
   * source taking over the stored session starts from (`resume.guilds`).
   * `undefined` when Redis is unreachable or holds no server list.
   */
  snapshots(): Promise<ServerSnapshot[] | undefined>;
  /** Redis up, role, epoch, lag, drops. */
  status(): ClusterStatus;
  /** The status as Prometheus text lines, to append to `/metrics`. */
  metrics(): string;
  /** Step down and disconnect (the server does this through `stop()`; use when not started). */
  close(): Promise<void>;
}

/**
 * Join (or form) a cluster. Nothing connects until the server starts (it
 * calls `broker.open`); Redis being down never throws: the instance serves
 * its viewers from its local copies and reconnects with backoff.
 *
 * Throws a `TypeError` naming the field on invalid options.
 *
 * @example
 * ```ts
 * import { MockSource } from "@dzone/dback";
 * import { redisCluster } from "@dzone/dback/redis";
 * const cluster = redisCluster({
 *   url: "redis://127.0.0.1:6379",
 *   namespace: "demo",
 *   source: new MockSource(),
 *   instanceId: "a",
 * });
 * if (cluster.instanceId !== "a") throw new Error("unexpected id");
 * if (cluster.status().role !== "follower") throw new Error("not started, so not leader");
 * await cluster.close();
 * ```
 */
export function redisCluster(options: RedisClusterOptions): RedisCluster {
  const settings = parseClusterOptions(options);
  const c = new Cluster(settings, options.source);
  const source = c.source;
  const broker = c.broker;
  const sessionStore = redisSessionStore(c);
  return {
    instanceId: c.id,
    source,
    broker,
    sessionStore,
    snapshots: () => c.snapshots(),
    status: () => c.status(),
    metrics: () => renderClusterMetrics(c.status()),
    close: () => c.close(),
  };
}
