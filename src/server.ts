/**
 * `WebSocketServer`: one `Deno.serve` port for the d-back WebSocket protocol,
 * static files, `/api/version`, `/healthz` and `/metrics`; the typed callback
 * map; and the broadcast methods.
 *
 * @module
 */
import { z } from "zod";
import {
  CallbackRunner,
  type Callbacks,
  type StaticResult,
  staticResultSchema,
} from "./callbacks.ts";
import { Connection, type ConnectionLimits } from "./connection.ts";
import { Directory } from "./directory.ts";
import { ProtocolHandler } from "./handler.ts";
import { Hub } from "./hub.ts";
import { Logger, type LogLevel, type LogSink } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { MockDataProvider, type MockOptions } from "./mock.ts";
import {
  type ChatEvent,
  type ClientIdEvent,
  clientIdEventSchema,
  clientIdFrame,
  describeZodError,
  messageEventSchema,
  messageFrame,
  type PresenceEvent,
  presenceEventSchema,
  presenceFrame,
} from "./protocol.ts";
import { errorPage, normaliseRequestPath, type StaticSource, staticSource } from "./static.ts";
import { VERSION } from "./version.ts";

/** The page this package ships, served when no `staticDir` is given. */
export const DEFAULT_STATIC_DIR: URL = new URL("../public/", import.meta.url);

/**
 * Options of {@link WebSocketServer}. Every limit has a default fit for the
 * public internet; see the README's "Security" and "Operating" sections.
 */
export interface ServerOptions {
  /** TCP port; `0` picks a free one (read it back from {@link WebSocketServer.port}). Default 3000. */
  port?: number;
  /** Interface to bind. Default `"localhost"`. */
  hostname?: string;
  /** Directory of static files; default: the package's own page. `false` disables static files. */
  staticDir?: string | URL | false;
  /** The hooks; the `on…` methods fill the same map. */
  callbacks?: Callbacks;
  /** Lowest level logged. Default `"info"`, or the `DBACK_LOG_LEVEL` environment variable. */
  logLevel?: LogLevel;
  /** Where log lines go (default: the console). */
  logSink?: LogSink;
  /** The mock world used for data hooks that are not registered, or options for a new one. */
  mock?: MockDataProvider | MockOptions;
  /** Deadline for each callback call, in ms. Default 5000. */
  callbackTimeoutMs?: number;
  /** How long a serialised user map is reused between presence changes, in ms. Default 1000; 0 disables. */
  userDataCacheMs?: number;
  /** Largest inbound frame in bytes; larger closes the connection with 1009. Default 65536. */
  maxFrameBytes?: number;
  /** Sustained inbound frames per second per connection. Default 10. */
  ratePerSecond?: number;
  /** Inbound burst allowance per connection. Default 20. */
  rateBurst?: number;
  /** Frames refused for rate before closing with 1008. Default 20. */
  rateStrikes?: number;
  /** Open WebSocket connections in total; more get HTTP 503. Default 10000. */
  maxConnections?: number;
  /** Open WebSocket connections per client IP; more get HTTP 429. Default 256. */
  maxConnectionsPerIp?: number;
  /** A connection that has not joined within this many ms is closed with 1008. Default 60000; 0 disables. */
  joinTimeoutMs?: number;
  /** Seconds without a pong before a peer is considered dead (Deno's ping/pong). Default 60; 0 disables. */
  idleTimeoutSeconds?: number;
  /**
   * Unsent bytes above which a client counts as behind. Default 4 MiB: above
   * the ~1 MB `server-join` of a 10,000-user server, so a big join is not
   * mistaken for a stall.
   */
  highWaterBytes?: number;
  /** A client behind for this many ms is dropped with 1013. Default 2000. */
  slowClientGraceMs?: number;
  /** Unsent bytes at which a client is dropped at once (the per-client memory bound). Default 32 MiB. */
  maxBufferedBytes?: number;
  /** When set, WebSocket upgrades whose `Origin` is not listed get 403. Default: any origin. */
  allowedOrigins?: string[];
  /** How long {@link WebSocketServer.stop} waits for clients to close, in ms. Default 5000. */
  shutdownTimeoutMs?: number;
}

const count = z.number().int().nonnegative();
const positive = z.number().int().positive();
const optionsSchema = z.object({
  port: z.number().int().min(0).max(65535).default(3000),
  hostname: z.string().min(1).default("localhost"),
  staticDir: z.union([z.string().min(1), z.instanceof(URL), z.literal(false)]).optional(),
  logLevel: z.enum(["debug", "info", "warn", "error", "silent"]).optional(),
  callbackTimeoutMs: positive.default(5000),
  userDataCacheMs: count.default(1000),
  maxFrameBytes: positive.default(64 * 1024),
  ratePerSecond: z.number().positive().default(10),
  rateBurst: positive.default(20),
  rateStrikes: count.default(20),
  maxConnections: positive.default(10_000),
  maxConnectionsPerIp: positive.default(256),
  joinTimeoutMs: count.default(60_000),
  idleTimeoutSeconds: count.default(60),
  highWaterBytes: positive.default(4 * 1024 * 1024),
  slowClientGraceMs: count.default(2000),
  maxBufferedBytes: positive.default(32 * 1024 * 1024),
  allowedOrigins: z.array(z.string().min(1)).optional(),
  shutdownTimeoutMs: count.default(5000),
}).refine((o) => o.maxBufferedBytes >= o.highWaterBytes, {
  message: "maxBufferedBytes must be at least highWaterBytes",
  path: ["maxBufferedBytes"],
});

type Settings = z.infer<typeof optionsSchema>;

function envLogLevel(): LogLevel | undefined {
  try {
    const v = Deno.env.get("DBACK_LOG_LEVEL");
    const parsed = z.enum(["debug", "info", "warn", "error", "silent"]).safeParse(v);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * The d-zone backend. One port serves the WebSocket (on any path), static
 * files, `GET /api/version`, `GET /healthz` and `GET /metrics`.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 *
 * const server = new WebSocketServer({ port: 3000 }); // mock data
 * await server.start();
 * server.broadcastMessage({
 *   server: "232769614004748288",
 *   uid: "123456789012345001",
 *   message: "hello",
 *   channel: "527964146659229701",
 * });
 * await server.stop();
 * ```
 */
export class WebSocketServer {
  /** The hooks. Also filled by the `on…` methods. */
  readonly callbacks: Callbacks;
  /** The mock world used for data hooks that are not registered. */
  readonly mock: MockDataProvider;
  /** Counters behind `GET /metrics`. */
  readonly metrics: Metrics = new Metrics();
  #settings: Settings;
  #limits: ConnectionLimits;
  #log: Logger;
  #hub: Hub;
  #directory: Directory;
  #handler: ProtocolHandler;
  #runner: CallbackRunner;
  #static: StaticSource | null;
  #connections = new Set<Connection>();
  #perIp = new Map<string, number>();
  #nextId = 1;
  #http: Deno.HttpServer<Deno.NetAddr> | undefined;
  #state: "stopped" | "starting" | "running" | "stopping" = "stopped";
  #stopping: Promise<void> | undefined;

  /** Create a server; nothing listens until {@link WebSocketServer.start}. Throws on invalid options. */
  constructor(options: ServerOptions = {}) {
    const { callbacks, logSink, mock, ...rest } = options;
    const parsed = optionsSchema.safeParse(rest);
    if (!parsed.success) {
      throw new TypeError(`Invalid WebSocketServer options: ${describeZodError(parsed.error)}`);
    }
    this.#settings = parsed.data;
    this.#limits = {
      maxFrameBytes: parsed.data.maxFrameBytes,
      ratePerSecond: parsed.data.ratePerSecond,
      rateBurst: parsed.data.rateBurst,
      rateStrikes: parsed.data.rateStrikes,
      joinTimeoutMs: parsed.data.joinTimeoutMs,
      highWaterBytes: parsed.data.highWaterBytes,
      slowGraceMs: parsed.data.slowClientGraceMs,
      maxBufferedBytes: parsed.data.maxBufferedBytes,
    };
    this.callbacks = { ...callbacks };
    this.#log = new Logger(parsed.data.logLevel ?? envLogLevel() ?? "info", logSink);
    this.mock = mock instanceof MockDataProvider ? mock : new MockDataProvider(mock);
    this.#runner = new CallbackRunner(parsed.data.callbackTimeoutMs, this.#log, this.metrics);
    this.#directory = new Directory(
      this.callbacks,
      this.mock,
      this.#runner,
      parsed.data.userDataCacheMs,
    );
    this.#hub = new Hub((serverId, active) => {
      if (!active) this.mock.setActive(serverId, false);
      else if (this.#directory.mockUsers(serverId)) this.mock.setActive(serverId, true);
    });
    this.mock.attach({
      presence: (e) => this.broadcastPresence(e),
      message: (e) => this.broadcastMessage(e),
    });
    this.#handler = new ProtocolHandler(
      this.#directory,
      this.#hub,
      this.#log,
      this.metrics,
      (conn) => this.#forget(conn),
    );
    const dir = parsed.data.staticDir;
    this.#static = dir === false ? null : staticSource(dir ?? DEFAULT_STATIC_DIR);
  }

  /** The bound port (the real one when constructed with `port: 0`). Throws before start. */
  get port(): number {
    if (!this.#http) throw new Error("WebSocketServer is not started");
    return this.#http.addr.port;
  }

  /** The bound hostname. */
  get hostname(): string {
    return this.#http?.addr.hostname ?? this.#settings.hostname;
  }

  /** Whether the server is accepting connections. */
  get running(): boolean {
    return this.#state === "running";
  }

  /** The number of open WebSocket connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Register `getServerData` (reference-style). */
  onGetServerData(fn: NonNullable<Callbacks["getServerData"]>): this {
    this.callbacks.getServerData = fn;
    return this;
  }
  /** Register `getUserData` (reference-style). */
  onGetUserData(fn: NonNullable<Callbacks["getUserData"]>): this {
    this.callbacks.getUserData = fn;
    this.#directory.invalidateAll();
    return this;
  }
  /** Register `staticRequest` (reference-style). */
  onStaticRequest(fn: NonNullable<Callbacks["staticRequest"]>): this {
    this.callbacks.staticRequest = fn;
    return this;
  }
  /** Register `validateDiscordUser` (reference-style). */
  onValidateDiscordUser(fn: NonNullable<Callbacks["validateDiscordUser"]>): this {
    this.callbacks.validateDiscordUser = fn;
    return this;
  }
  /** Register `getClientId` (reference-style). */
  onGetClientId(fn: NonNullable<Callbacks["getClientId"]>): this {
    this.callbacks.getClientId = fn;
    return this;
  }

  /**
   * Start listening. Resolves once the port is bound. Throws if already
   * started, or if the port cannot be bound.
   */
  start(): Promise<void> {
    if (this.#state !== "stopped") {
      return Promise.reject(new Error(`WebSocketServer is already ${this.#state}`));
    }
    this.#state = "starting";
    return new Promise<void>((resolve, reject) => {
      try {
        this.#http = Deno.serve({
          port: this.#settings.port,
          hostname: this.#settings.hostname,
          onListen: ({ hostname, port }) => {
            this.#state = "running";
            this.#log.info(`dback ${VERSION} listening on http://${hostname}:${port}`);
            resolve();
          },
          onError: (err) => {
            this.#log.error(`request failed: ${err instanceof Error ? err.message : String(err)}`);
            return errorPage(500, "Internal Server Error");
          },
        }, (req, info) => this.#route(req, info));
      } catch (err) {
        this.#state = "stopped";
        this.#http = undefined;
        reject(err);
      }
    });
  }

  /**
   * Stop: refuse new connections (and report 503 on `/healthz`), close every
   * WebSocket with 1001, wait up to `shutdownTimeoutMs` for them, free the
   * port. Stopping a stopped server does nothing.
   */
  stop(): Promise<void> {
    if (this.#state === "stopped") return Promise.resolve();
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#drain().finally(() => {
      this.#stopping = undefined;
      this.#http = undefined;
      this.#state = "stopped";
    });
    return this.#stopping;
  }

  async #drain(): Promise<void> {
    this.#state = "stopping";
    this.#log.info(`shutting down: closing ${this.#connections.size} connection(s)`);
    this.mock.stopAll();
    for (const conn of this.#connections) conn.close(1001, "Server shutting down");
    const deadline = Date.now() + this.#settings.shutdownTimeoutMs;
    while (this.#connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.#connections.size > 0) {
      this.#log.warn(`${this.#connections.size} connection(s) did not close in time`);
    }
    const http = this.#http!;
    await http.shutdown();
    await http.finished;
    this.mock.stopAll();
    this.#log.info("stopped");
  }

  /**
   * Send a chat message to every connection joined to `server`.
   * Returns how many connections it reached. Throws a `TypeError` on invalid input.
   *
   * @example
   * ```ts ignore
   * server.broadcastMessage({ server: "232769614004748288", uid: "42", message: "hi", channel: "1" });
   * ```
   */
  broadcastMessage(event: ChatEvent): number {
    const e = check(messageEventSchema, event, "broadcastMessage");
    this.metrics.broadcasts.message++;
    return this.#hub.publish(e.server, messageFrame(e));
  }

  /**
   * Send a presence change to every connection joined to `server`. Include
   * `username` (and `roleColor`) for a user the clients may not know yet;
   * `delete: true` removes the user. Returns how many connections it reached.
   *
   * @example
   * ```ts ignore
   * server.broadcastPresence({ server: "232769614004748288", uid: "42", status: "idle" });
   * ```
   */
  broadcastPresence(event: PresenceEvent): number {
    const e = check(presenceEventSchema, event, "broadcastPresence");
    this.metrics.broadcasts.presence++;
    // The next joiner must see this change in its user map.
    this.#directory.invalidate(e.server);
    return this.#hub.publish(e.server, presenceFrame(e));
  }

  /**
   * Tell every connection joined to `server` its new OAuth2 client id.
   * Returns how many connections it reached.
   *
   * @example
   * ```ts ignore
   * server.broadcastClientIdUpdate({ server: "232769614004748288", clientId: "1234567890" });
   * ```
   */
  broadcastClientIdUpdate(event: ClientIdEvent): number {
    const e = check(clientIdEventSchema, event, "broadcastClientIdUpdate");
    this.metrics.broadcasts["update-clientid"]++;
    return this.#hub.publish(e.server, clientIdFrame(e));
  }

  /** Drop the cached user map of a server, e.g. after changing users without a broadcast. */
  invalidateUserData(serverId?: string): void {
    if (serverId === undefined) this.#directory.invalidateAll();
    else this.#directory.invalidate(serverId);
  }

  #forget(conn: Connection): void {
    if (!this.#connections.delete(conn)) return;
    const n = (this.#perIp.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(conn.ip);
    else this.#perIp.set(conn.ip, n);
  }

  #route(req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response | Promise<Response> {
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      return this.#upgrade(req, info.remoteAddr.hostname);
    }
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/api/version" && (req.method === "GET" || req.method === "HEAD")) {
      return Response.json({ version: VERSION });
    }
    if (path === "/healthz") {
      const ok = this.#state === "running";
      return new Response(ok ? "ok\n" : "draining\n", {
        status: ok ? 200 : 503,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    if (path === "/metrics") {
      return new Response(
        this.metrics.render(
          this.#connections.size,
          this.#hub.sizes(),
          this.#state !== "running",
        ),
        {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        },
      );
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      const res = errorPage(405, "Method Not Allowed");
      res.headers.set("allow", "GET, HEAD");
      return res;
    }
    return this.#serveStatic(path, req.method);
  }

  async #serveStatic(path: string, method: string): Promise<Response> {
    const hook = this.callbacks.staticRequest;
    if (hook) {
      // The hook sees the path the built-in server would use, or nothing at all.
      const checked = normaliseRequestPath(path);
      if (!checked.ok) {
        return checked.status === 400 ? errorPage(400, "Bad Request") : errorPage(403, "Forbidden");
      }
      const r = await this.#runner.run(
        "staticRequest",
        () => hook(checked.path),
        staticResultSchema,
      );
      if (!r.ok) return errorPage(500, "Internal Server Error");
      if (r.value) return toResponse(r.value, method);
    }
    if (!this.#static) return errorPage(404, "Not Found");
    return this.#static.serve(path, method);
  }

  #upgrade(req: Request, ip: string): Response {
    const s = this.#settings;
    const refuse = (status: 403 | 429 | 503, reason: string, title: string) => {
      this.metrics.reject(reason);
      this.#log.warn(`upgrade from ${ip} refused: ${reason}`);
      return errorPage(status, title);
    };
    if (this.#state !== "running") return refuse(503, "draining", "Service Unavailable");
    const origin = req.headers.get("origin");
    if (s.allowedOrigins && (origin === null || !s.allowedOrigins.includes(origin))) {
      return refuse(403, "origin", "Forbidden");
    }
    if (this.#connections.size >= s.maxConnections) {
      return refuse(503, "max_connections", "Service Unavailable");
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp >= s.maxConnectionsPerIp) return refuse(429, "max_per_ip", "Too Many Requests");
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(req, { idleTimeout: s.idleTimeoutSeconds });
    } catch (err) {
      this.#log.warn(`bad upgrade from ${ip}: ${err instanceof Error ? err.message : err}`);
      return errorPage(400, "Bad Request");
    }
    const conn = new Connection(
      `c${this.#nextId++}`,
      ip,
      upgraded.socket,
      this.#limits,
      this.#handler,
      this.#log,
      this.metrics,
    );
    this.#connections.add(conn);
    this.#perIp.set(ip, fromIp + 1);
    this.metrics.connectionsTotal++;
    this.#log.info(`connected from ${ip}${origin ? ` (origin ${origin})` : ""}`, conn.id);
    return upgraded.response;
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, method: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new TypeError(`${method}: ${describeZodError(r.error)}`);
  return r.data;
}

function toResponse(result: StaticResult, method: string): Response {
  if (result instanceof Response) return result;
  const [type, content] = result;
  return new Response(method === "HEAD" ? null : content as BodyInit, {
    headers: { "content-type": type },
  });
}
