/**
 * The options of `WebSocketServer` (and of its `start`): their
 * documentation, their zod schema (unknown options are an error) and their
 * defaults.
 *
 * @module
 */
import { z } from "zod";
import type { Broker } from "./broker.ts";
import type { Callbacks } from "./callbacks.ts";
import { type LogLevel, logLevelSchema, type LogSink } from "./log.ts";
import { parseOrThrow } from "./_zod.ts";
import { parseRange } from "./_client_address.ts";
import type { DataSource } from "./source.ts";
import { TRANSPORT_NAMES, type TransportName } from "./transport/mod.ts";

export type { TransportName } from "./transport/mod.ts";

/**
 * The page this package ships, served when no `staticDir` is given.
 *
 * @example
 * ```ts
 * import { DEFAULT_STATIC_DIR } from "@dzone/dback";
 * if (!DEFAULT_STATIC_DIR.href.endsWith("/public/")) throw new Error(DEFAULT_STATIC_DIR.href);
 * ```
 */
export const DEFAULT_STATIC_DIR: URL = new URL("../public/", import.meta.url);

/**
 * What `WebSocketServer.start` should do besides starting the source.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 * await using server = new WebSocketServer({ logLevel: "warn" });
 * await server.start({ listen: false }); // no port bound: mount it with server.fetch
 * const res = await server.fetch(new Request("http://dzone.local/healthz"));
 * if (res.status !== 200) throw new Error("not running");
 * ```
 */
export interface StartOptions {
  /**
   * Bind the port from the options (default `true`). `false` starts only the
   * data source and broker, for a server mounted with
   * `WebSocketServer.fetch` inside another HTTP server.
   */
  listen?: boolean;
}

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
  /** How long a user map and the server list are reused before the source is asked again, in ms (presence events keep a user map current meanwhile; a `server-gone` event drops the list). Default 1000; 0 disables. */
  userDataCacheMs?: number;
  /**
   * Leave offline members out of the `server-join` of a server whose user
   * map has more than this many users (like the original bot's
   * `hideOffline`, for big guilds): its viewers then get a member who comes
   * online with its name and colour, and lose one who goes offline. Judged
   * each time the map is loaded from the source (see docs/library.md).
   * Needs `userDataCacheMs` above 0. Default 0 (never).
   */
  hideOfflineAbove?: number;
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
   * Memory one connection may make the runtime hold: unsent bytes × the
   * runtime's measured overhead factor (see docs/runtimes.md). A send that
   * would take a client past it drops the client at once; a `server-join` on
   * its way does not count (see `joinMinBytesPerSecond`). One client address
   * may have `maxConnectionsPerIp` × this charged, joins included. Default 16 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * A connection dback dropped stays charged to its client address (its slot
   * and its bytes) until the runtime proves its socket gone, and at least
   * this many ms. Default 60000.
   */
  dropQuarantineMs?: number;
  /**
   * The slowest a client may read its `server-join`: until the join is out,
   * its bytes are not "behind" for `slowClientGraceMs` plus its size at this
   * rate; still unsent then, the client is dropped with 1013. Default 524288 (512 KiB/s).
   */
  joinMinBytesPerSecond?: number;
  /**
   * Unsent bytes of all sockets together above which new `server-join`s wait
   * in a first-come first-served queue, served as bytes drain. Default 1 GiB.
   */
  maxTotalBufferedBytes?: number;
  /** Joins that may wait for the outbound budget; one more gets an error frame and is closed with 1013. Default 1000. */
  joinQueueLength?: number;
  /** Joins (a `connect` that would send a `server-join`) per second per connection; more get "Too many messages. Slow down.". Default 1 (burst `joinBurst`). */
  joinsPerSecond?: number;
  /** Joins a connection may make in a burst. Default 10. */
  joinBurst?: number;
  /** Joins per second from one client IP, all its connections together (the budget outlives them). Default 2 (burst `ipJoinBurst`). */
  ipJoinsPerSecond?: number;
  /** Joins one client IP may make in a burst; never fewer than `maxConnectionsPerIp`, so every connection an address may hold can join at once. Default 30. */
  ipJoinBurst?: number;
  /**
   * When set, WebSocket upgrades whose `Origin` is not listed (nor the
   * server's own origin, for its page) get 403. Each entry is an origin such
   * as `https://example.com` (no path, no trailing slash). Default: any origin.
   */
  allowedOrigins?: string[];
  /** How long `stop()` waits for clients to close, in ms; then it returns anyway. Default 5000. */
  shutdownTimeoutMs?: number;
  /**
   * Reverse proxies (addresses or CIDR ranges, IPv4 or IPv6) whose
   * `X-Forwarded-For` (or, without it, `Forwarded: for=`) names the client:
   * the rightmost address in it that is not itself listed. From any other
   * peer those headers are ignored. Default: none (the TCP peer is the client).
   */
  trustProxy?: string[];
  /** IPv6 clients share their per-IP limits with the rest of this prefix (bits). Default 64. */
  ipv6Prefix?: number;
  /**
   * Client addresses whose budgets are remembered after their last
   * connection closes (until the budgets are full again); past this, the
   * least recently seen is forgotten. Default 100000.
   */
  maxTrackedIps?: number;
  /**
   * The origin(s) this server's page is served under (e.g. `https://dzone.example`
   * behind a TLS proxy). With `allowedOrigins`, these are let in too; the
   * request's `Host` header is never trusted for that. Default: none.
   */
  publicOrigins?: string[];
  /** Serve HTTPS and `wss://` directly: PEM text of the certificate (chain) and its key. */
  tls?: { cert: string; key: string };
  /**
   * `GET /metrics`: on the viewer port (default), on a port of its own
   * (`{ port, hostname? }`, hostname defaults to `hostname`), or `false` for
   * none.
   */
  metrics?: false | { port: number; hostname?: string };
  /**
   * Which runtime adapter serves: `"deno"` (`Deno.serve`), `"bun"`
   * (`Bun.serve`) or `"node"` (`node:http` + the `ws` package). Default: the
   * runtime's own (`"node"` on Node.js). `"node"` also runs on Deno, where it
   * bounds what Deno's native WebSocket cannot (see docs/runtimes.md).
   */
  transport?: TransportName;
  /**
   * A connection that has not sent a complete request head within this many
   * ms is closed (Node transport; Bun closes silent connections by itself,
   * Deno's native server cannot). Default 10000.
   */
  headerTimeoutMs?: number;
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

const cidr = z.string().refine((t) => parseRange(t) !== null, {
  error: (i) => `${JSON.stringify(i.input)} is not an IP address or CIDR range`,
});

/** The option schema; the command line derives its limit flags from it. */
export const optionsSchema = z.strictObject({
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
  logLevel: logLevelSchema.default("info"),
  logSink: z.custom<LogSink>((v) => typeof v === "function").optional(),
  callbackTimeoutMs: positive.default(5000).describe("deadline of each callback call, ms"),
  userDataCacheMs: count.default(1000).describe(
    "reuse a user map and the server list this long before asking again, ms (0: never)",
  ),
  hideOfflineAbove: count.default(0).describe(
    "leave offline members out of the join of a server with more users than this (0: never)",
  ),
  maxFrameBytes: positive.default(8 * 1024).describe(
    "largest inbound frame, bytes (larger: close 1009)",
  ),
  ratePerSecond: z.number().positive().default(10).describe(
    "inbound frames per second per connection",
  ),
  rateBurst: positive.default(20).describe("inbound burst per connection"),
  rateStrikes: count.default(20).describe("frames refused for rate before closing with 1008"),
  ipFramesPerSecond: z.number().positive().default(50).describe(
    "inbound frames per second per client IP (burst 2x)",
  ),
  ipBytesPerSecond: positive.default(256 * 1024).describe(
    "inbound bytes per second per client IP (burst 2x)",
  ),
  ipLoginChecksPerMinute: z.number().positive().default(20).describe(
    "Discord login checks per minute per client IP (burst 5)",
  ),
  maxConnections: positive.default(10_000).describe(
    "open WebSocket connections in total (more: 503)",
  ),
  maxConnectionsPerIp: positive.default(32).describe(
    "open WebSocket connections per client IP (more: 429)",
  ),
  joinTimeoutMs: count.default(60_000).describe(
    "close a connection that has not joined after this, ms (0: never)",
  ),
  openTimeoutMs: positive.default(10_000).describe(
    "forget an upgraded socket that has not opened after this, ms",
  ),
  idleTimeoutSeconds: count.default(60).describe(
    "seconds without a pong before a peer is dead (0: never)",
  ),
  highWaterBytes: positive.default(4 * 1024 * 1024).describe(
    "unsent bytes above which a client counts as behind",
  ),
  slowClientGraceMs: count.default(2000).describe("drop a client behind for this long, ms"),
  maxBufferedBytes: positive.default(16 * 1024 * 1024).describe(
    "memory (unsent bytes x the runtime's factor) no send may take a client past (a join on its way excepted)",
  ),
  dropQuarantineMs: count.default(60_000).describe(
    "a dropped connection stays charged to its address at least this long, ms",
  ),
  joinMinBytesPerSecond: positive.default(512 * 1024).describe(
    "slowest read of a server-join, bytes/s (slower: dropped with 1013)",
  ),
  maxTotalBufferedBytes: positive.default(1024 * 1024 * 1024).describe(
    "unsent bytes of all sockets above which joins wait in a FIFO queue",
  ),
  joinQueueLength: positive.default(1000).describe(
    "joins that may wait for the outbound budget (more: error and close 1013)",
  ),
  joinsPerSecond: z.number().positive().default(1).describe("joins per second per connection"),
  joinBurst: positive.default(10).describe("joins in a burst per connection"),
  ipJoinsPerSecond: z.number().positive().default(2).describe("joins per second per client IP"),
  ipJoinBurst: positive.default(30).describe("joins in a burst per client IP"),
  allowedOrigins: z.array(origin).optional(),
  shutdownTimeoutMs: count.default(5000).describe("how long a stop waits for clients to close, ms"),
  trustProxy: z.array(cidr).default([]),
  ipv6Prefix: z.number().int().min(1).max(128).default(64).describe(
    "IPv6 clients share per-IP limits within this prefix, bits",
  ),
  maxTrackedIps: positive.default(100_000).describe(
    "client addresses whose spent budgets are remembered",
  ),
  publicOrigins: z.array(origin).default([]),
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  metrics: z.union([
    z.literal(false),
    z.strictObject({
      port: z.number().int().min(0).max(65535),
      hostname: z.string().min(1).optional(),
    }),
  ]).optional(),
  transport: z.enum(TRANSPORT_NAMES as [TransportName, ...TransportName[]]).optional(),
  headerTimeoutMs: positive.default(10_000).describe(
    "close a connection whose request head is not complete after this, ms (Node transport)",
  ),
}).refine((o) => o.maxBufferedBytes >= o.highWaterBytes, {
  message: "maxBufferedBytes must be at least highWaterBytes",
  path: ["maxBufferedBytes"],
}).refine((o) => o.hideOfflineAbove === 0 || o.userDataCacheMs > 0, {
  // Which members a viewer was shown is known from the cached map alone.
  message: "hideOfflineAbove needs userDataCacheMs above 0",
  path: ["hideOfflineAbove"],
});

/** The options after defaults. */
export type Settings = z.infer<typeof optionsSchema>;

/** Check options and fill in defaults; throws a `TypeError` naming the first bad option. */
export function parseOptions(options: ServerOptions): Settings {
  return parseOrThrow(optionsSchema, options, "Invalid WebSocketServer options");
}
