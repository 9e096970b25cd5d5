/**
 * Options of `redisCluster()`, checked with zod at the boundary.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import { z } from "zod";
import { parseOrThrow } from "../_zod.ts";
import { type LogLevel, logLevelSchema, type LogSink } from "../log.ts";
import type { DataSource } from "../source.ts";

/** Options of `redisCluster()`. */
export interface RedisClusterOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  /** Prefix of every key and channel, so clusters can share one Redis. Default `"dback"`. */
  namespace?: string;
  /**
   * The data source the leader runs (mock activity, the Discord gateway
   * source, your own). Only the lease holder starts it. A source that can
   * start again after a stop may be given as is; for one that cannot (the
   * Discord gateway source) give a function making a new one: it is called
   * once here, and again for each later term as publisher.
   */
  source: DataSource | (() => DataSource);
  /**
   * Lease length in ms; a dead leader is replaced within about 1⅓ of it.
   * Default 5000. A link to Redis whose round trip exceeds the command
   * timeout (half the lease by default) counts as down.
   */
  leaseMs?: number;
  /**
   * Timeout of every Redis command, in ms; a command not answered in time
   * marks Redis down and both connections are reopened. At most half the
   * lease. Default: half the lease.
   */
  commandTimeoutMs?: number;
  /**
   * Events kept per server in its Redis stream (about; trimmed in blocks).
   * An instance that was cut off reads what it missed from there; beyond
   * it, it reloads the snapshot and counts the events skipped as lost.
   * Default 1000.
   */
  streamLength?: number;
  /**
   * Restart the data source when it has sent nothing for this long while
   * it watches servers it knows, in ms (0: never). Set it to several times
   * the source's own cadence. Default 0.
   */
  watchdogMs?: number;
  /** This instance's id in the cluster. Default: random. */
  instanceId?: string;
  /** Whether this instance may become the publisher. Default `true`. */
  candidate?: boolean;
  /** How long a join waits for the leader to write a missing snapshot, in ms. Default 2000. */
  snapshotWaitMs?: number;
  /** How long `open` waits for the first connection before serving anyway, in ms. Default 2000. */
  connectWaitMs?: number;
  /**
   * Events kept while Redis is down, sent in order on reconnect (oldest
   * dropped beyond): library broadcasts, and the publisher's own events made
   * while its lease lasts (Redis refuses them if the lease moved meanwhile).
   * Default 1000.
   */
  libraryQueue?: number;
  /**
   * Reconnect delays: doubling from `minMs` up to `maxMs`. Default 100 ms up
   * to half the lease (at most 5000 ms), so a healed link is back within
   * about a lease.
   */
  backoff?: { minMs?: number; maxMs?: number };
  /**
   * Lowest level logged. Run by a server, the cluster logs through the
   * server's logger (its level and sink) and this drops lines before they get
   * there; before the server starts it, `"info"` by default.
   */
  logLevel?: LogLevel;
  /**
   * Where log lines go, at `logLevel`, instead of the server's logger. Default:
   * the server's logger once a server starts the cluster, the console before.
   */
  logSink?: LogSink;
}

const schema = z.object({
  url: z.string().regex(/^rediss?:\/\/[^\s]+$/, "url must be redis://host:port or rediss://…"),
  namespace: z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "namespace must be 1-64 letters, digits, '_', '.' or '-'",
  ).default("dback"),
  leaseMs: z.number().int().min(300, "leaseMs must be at least 300").max(600_000).default(5000),
  instanceId: z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "instanceId must be 1-64 letters, digits, '_', '.' or '-'",
  )
    .optional(),
  commandTimeoutMs: z.number().int().min(50).optional(),
  streamLength: z.number().int().min(10).max(1_000_000).default(1000),
  watchdogMs: z.number().int().nonnegative().default(0),
  candidate: z.boolean().default(true),
  snapshotWaitMs: z.number().int().nonnegative().default(2000),
  connectWaitMs: z.number().int().nonnegative().default(2000),
  libraryQueue: z.number().int().nonnegative().default(1000),
  backoff: z.object({
    minMs: z.number().int().positive().default(100),
    maxMs: z.number().int().positive().optional(),
  }).default({ minMs: 100 }),
  logLevel: logLevelSchema.optional(),
});

/** Checked options with defaults filled in. */
export type ClusterSettings =
  & Omit<z.infer<typeof schema>, "instanceId" | "commandTimeoutMs" | "backoff">
  & {
    instanceId: string;
    commandTimeoutMs: number;
    backoff: { minMs: number; maxMs: number };
    logSink?: LogSink;
  };

/** Check options; throws a `TypeError` naming the field. */
export function parseClusterOptions(options: RedisClusterOptions): ClusterSettings {
  const { source: given, logSink, ...rest } = options;
  const source = typeof given === "function" ? undefined : given;
  if (
    typeof given !== "function" && (
      !source || typeof source.getServerData !== "function" ||
      typeof source.getUserData !== "function"
    )
  ) {
    throw new TypeError(
      "Invalid redisCluster options: source: must be a DataSource or a function making one",
    );
  }
  const parsed = parseOrThrow(schema, rest, "Invalid redisCluster options");
  const half = Math.floor(parsed.leaseMs / 2);
  const commandTimeoutMs = parsed.commandTimeoutMs ?? half;
  if (commandTimeoutMs > half) {
    throw new TypeError(
      `Invalid redisCluster options: commandTimeoutMs: must be at most half of leaseMs (${half})`,
    );
  }
  const instanceId = parsed.instanceId ??
    Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  const backoff = {
    minMs: parsed.backoff.minMs,
    maxMs: parsed.backoff.maxMs ?? Math.max(parsed.backoff.minMs, Math.min(5000, half)),
  };
  return { ...parsed, instanceId, commandTimeoutMs, backoff, logSink };
}
