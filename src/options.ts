/**
 * The options of `WebSocketServer`: their documentation, their zod schema
 * (unknown options are an error) and their defaults.
 *
 * @module
 */
import { z } from "zod";
import type { Broker } from "./broker.ts";
import type { Callbacks } from "./callbacks.ts";
import { LOG_LEVELS, type LogLevel, type LogSink } from "./log.ts";
import { describeZodError } from "./protocol.ts";
import type { DataSource } from "./source.ts";

/**
 * Options of `WebSocketServer`. Every limit has a default fit for the public
 * internet; see the README's "Security" and "Operating" sections.
 *
 * @example
 * ```ts
 * import { type ServerOptions, WebSocketServer } from "@dzone/dback";
 * const options: ServerOptions = { port: 0, maxConnectionsPerIp: 8, allowedOrigins: ["https://d-zone.example"] };
 * let refused = "";
 * try {
 *   new WebSocketServer({ ...options, allowedOrigins: ["https://d-zone.example/"] });
 * } catch (err) {
 *   refused = String(err);
 * }
 * if (!refused.includes("not an origin")) throw new Error("a trailing slash must be refused");
 * new WebSocketServer(options);
 * ```
 */
export interface ServerOptions {
  /** TCP port; `0` picks a free one (read it back from `server.port`). Default 3000. */
  port?: number;
  /** Interface to bind. Default `"localhost"`. */
  hostname?: string;
  /**
   * Directory of static files; default: the package's own page. `false`
   * disables static files. A directory that does not exist (or cannot be
   * read) makes `start()` fail.
   */
  staticDir?: string | URL | false;
  /** Where servers, users, login checks and live events come from. Default: the mock world. */
  source?: DataSource;
  /** The d-back hooks; each one registered replaces the source's answer to that question. */
  callbacks?: Callbacks;
  /** How broadcasts reach viewers: this process only (default), or every instance (see `./redis`). */
  broker?: Broker;
  /** Lowest level logged. Default `"info"`. */
  logLevel?: LogLevel;
  /** Where log lines go (default: the console). */
  logSink?: LogSink;
  /** Deadline for each callback call, in ms. Default 5000. */
  callbackTimeoutMs?: number;
  /** How long a user map is reused before the source is asked again, in ms (presence events keep it current meanwhile). Default 1000; 0 disables. */
  userDataCacheMs?: number;
  /** Largest inbound frame in bytes; larger closes the connection with 1009. Default 8192 (client frames are well under 4 KiB). */
  maxFrameBytes?: number;
  /** Sustained inbound frames per second per connection. Default 10. */
  ratePerSecond?: number;
  /** Inbound burst allowance per connection. Default 20. */
  rateBurst?: number;
  /** Frames refused for rate (own or the IP's budget) before closing with 1008. Default 20. */
  rateStrikes?: number;
  /** Inbound frames per second from one IP, all its connections together. Default 50 (burst: twice that). */
  ipFramesPerSecond?: number;
  /** Inbound bytes per second from one IP, all its connections together. Default 262144 (burst: twice that). */
  ipBytesPerSecond?: number;
  /** Discord login checks per minute from one IP (each may cost a request to Discord). Default 20 (burst 5). */
  ipLoginChecksPerMinute?: number;
  /** Open WebSocket connections in total, dropped ones included until really closed; more get HTTP 503. Default 10000. */
  maxConnections?: number;
  /** Open WebSocket connections per client IP, dropped ones included; more get HTTP 429. Default 32. */
  maxConnectionsPerIp?: number;
  /** A connection that has not joined within this many ms is closed with 1008. Default 60000; 0 disables. */
  joinTimeoutMs?: number;
  /** An upgraded socket that has not opened within this many ms is forgotten (its peer reset). Default 10000. */
  openTimeoutMs?: number;
  /** Seconds without a pong before a peer is considered dead (the runtime's ping/pong). Default 60; 0 disables. */
  idleTimeoutSeconds?: number;
  /**
   * Unsent bytes above which a client counts as behind. Default 4 MiB: above
   * the ~1 MB `server-join` of a 10,000-user server, so a big join is not
   * mistaken for a stall.
   */
  highWaterBytes?: number;
  /** A client behind for this many ms is dropped with 1013. Default 2000. */
  slowClientGraceMs?: number;
  /**
   * Memory one connection may make the runtime hold (unsent bytes × the
   * runtime's measured overhead factor); a send that would pass it drops the
   * client at once. One address may hold `maxConnectionsPerIp` times this.
   * Default 16 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * A connection dback dropped stays charged to its address (slot and
   * bytes) until the runtime proves its socket gone, and at least this many
   * ms. Default 60000.
   */
  dropQuarantineMs?: number;
  /**
   * When set, WebSocket upgrades whose `Origin` is not listed (nor the
   * server's own origin, for its page) get 403. Each entry is an origin such
   * as `https://example.com` (no path, no trailing slash). Default: any origin.
   */
  allowedOrigins?: string[];
  /** How long `stop()` waits for clients to close, in ms; then it returns anyway. Default 5000. */
  shutdownTimeoutMs?: number;
}

const count = z.number().int().nonnegative();
const positive = z.number().int().positive();
const origin = z.string().refine((o) => {
  try {
    return new URL(o).origin === o;
  } catch {
    return false;
  }
}, { error: (i) => `${JSON.stringify(i.input)} is not an origin like https://example.com` });

const schema = z.strictObject({
  port: z.number().int().min(0).max(65535).default(3000),
  hostname: z.string().min(1).default("localhost"),
  staticDir: z.union([z.string().min(1), z.instanceof(URL), z.literal(false)]).optional(),
  source: z.custom<DataSource>((v) =>
    typeof v === "object" && v !== null &&
    typeof (v as DataSource).getServerData === "function" &&
    typeof (v as DataSource).getUserData === "function", {
    error: "source must have getServerData and getUserData",
  }).optional(),
  callbacks: z.custom<Callbacks>((v) => typeof v === "object" && v !== null).optional(),
  broker: z.custom<Broker>((v) =>
    typeof v === "object" && v !== null && typeof (v as Broker).publish === "function"
  ).optional(),
  logLevel: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).default("info"),
  logSink: z.custom<LogSink>((v) => typeof v === "function").optional(),
  callbackTimeoutMs: positive.default(5000),
  userDataCacheMs: count.default(1000),
  maxFrameBytes: positive.default(8 * 1024),
  ratePerSecond: z.number().positive().default(10),
  rateBurst: positive.default(20),
  rateStrikes: count.default(20),
  ipFramesPerSecond: z.number().positive().default(50),
  ipBytesPerSecond: positive.default(256 * 1024),
  ipLoginChecksPerMinute: z.number().positive().default(20),
  maxConnections: positive.default(10_000),
  maxConnectionsPerIp: positive.default(32),
  joinTimeoutMs: count.default(60_000),
  openTimeoutMs: positive.default(10_000),
  idleTimeoutSeconds: count.default(60),
  highWaterBytes: positive.default(4 * 1024 * 1024),
  slowClientGraceMs: count.default(2000),
  maxBufferedBytes: positive.default(16 * 1024 * 1024),
  dropQuarantineMs: count.default(60_000),
  allowedOrigins: z.array(origin).optional(),
  shutdownTimeoutMs: count.default(5000),
}).refine((o) => o.maxBufferedBytes >= o.highWaterBytes, {
  message: "maxBufferedBytes must be at least highWaterBytes",
  path: ["maxBufferedBytes"],
});

/** The options after defaults. */
export type Settings = z.infer<typeof schema>;

/** Check options and fill in defaults; throws a `TypeError` naming the first bad option. */
export function parseOptions(options: ServerOptions): Settings {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    throw new TypeError(`Invalid WebSocketServer options: ${describeZodError(parsed.error)}`);
  }
  return parsed.data;
}
