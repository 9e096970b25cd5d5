/**
 * `WebSocketServer`: wires the pieces (transport, admission, protocol
 * handler, hub, directory, data source, broker), owns the lifecycle, and
 * offers the broadcasts.
 *
 * @module
 */
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { Admission, quote } from "./_admission.ts";
import { type Broker, LocalBroker, type ServerEvent } from "./broker.ts";
import { CallbackRunner, type Callbacks } from "./callbacks.ts";
import type { Connection } from "./_connection.ts";
import { Directory } from "./_directory.ts";
import { ProtocolHandler } from "./_handler.ts";
import { routes } from "./_http.ts";
import { Hub } from "./_hub.ts";
import { Logger } from "./log.ts";
import { Metrics, type MetricsSnapshot } from "./metrics.ts";
import { parseOptions, type ServerOptions, type Settings } from "./options.ts";
import {
  type ChatEvent,
  type ClientIdEvent,
  clientIdEventSchema,
  clientIdFrame,
  describeZodError,
  ERRORS,
  messageEventSchema,
  messageFrame,
  type PresenceEvent,
  presenceEventSchema,
  presenceFrame,
} from "./protocol.ts";
import type { DataSource, EventSink } from "./source.ts";
import { MockSource } from "./sources/mock.ts";
import { withCallbacks } from "./sources/_callbacks.ts";
import { errorPage, type StaticSource, staticSource } from "./_static.ts";
import { bunTransport } from "./transport/_bun.ts";
import { denoTransport } from "./transport/_deno.ts";
import type { Listener, MountedWebSocket, RequestContext, Transport } from "./transport/types.ts";
import { VERSION } from "./version.ts";

export type { ServerOptions } from "./options.ts";

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
 * What {@link WebSocketServer.start} should do besides starting the source.
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
   * {@link WebSocketServer.fetch} inside another HTTP server.
   */
  listen?: boolean;
}

/**
 * The d-zone backend. One port serves the WebSocket (on any path), static
 * files, `GET /api/version`, `GET /healthz` and `GET /metrics`.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 *
 * await using server = new WebSocketServer({ port: 0, hostname: "127.0.0.1", logLevel: "warn" });
 * await server.start();
 * const res = await fetch(`http://127.0.0.1:${server.port}/api/version`);
 * const { version } = await res.json();
 * if (typeof version !== "string") throw new Error("no version");
 * // Nobody has joined, so a broadcast reaches no one.
 * const reached = server.broadcastMessage({
 *   server: "232769614004748288",
 *   uid: "123456789012345001",
 *   message: "hello",
 *   channel: "527964146659229701",
 * });
 * if (reached !== 0) throw new Error("unexpected");
 * ```
 */
export class WebSocketServer implements AsyncDisposable {
  #settings: Settings;
  #log: Logger;
  #metrics = new Metrics();
  #hooks: Callbacks;
  #source: DataSource;
  #broker: Broker;
  #runner: CallbackRunner;
  #directory: Directory;
  #hub: Hub<Connection>;
  #admission: Admission;
  #files: StaticSource | null;
  #transport: Transport;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #fetch: (req: Request, ctx: RequestContext) => Promise<Response>;
  #listener: Listener | undefined;
  #state: "stopped" | "starting" | "running" | "stopping" = "stopped";
  #stopping: Promise<void> | undefined;

  /** Create a server; nothing listens until {@link WebSocketServer.start}. Throws a `TypeError` on invalid options. */
  constructor(options: ServerOptions = {}) {
    const s = this.#settings = parseOptions(options);
    this.#log = new Logger(s.logLevel, s.logSink);
    this.#transport = "Bun" in globalThis
      ? bunTransport({
        idleTimeoutSeconds: s.idleTimeoutSeconds,
        maxPayloadBytes: s.maxFrameBytes,
        maxBufferedBytes: s.maxBufferedBytes,
      })
      : denoTransport;
    this.#hooks = { ...s.callbacks };
    this.#source = withCallbacks(s.source ?? new MockSource(), this.#hooks);
    this.#broker = s.broker ?? new LocalBroker();
    this.#runner = new CallbackRunner(s.callbackTimeoutMs, this.#log, this.#metrics);
    this.#directory = new Directory(this.#source, this.#runner, s.userDataCacheMs, this.#log);
    const rooms = this.#transport.rooms;
    this.#hub = new Hub<Connection>(
      (serverId, active) => {
        this.#source.watch?.(serverId, active);
        this.#broker.watch(serverId, active);
      },
      rooms && {
        join: (conn, room) => conn.peer && rooms.subscribe(conn.peer, room),
        leave: (conn, room) => conn.peer && rooms.unsubscribe(conn.peer, room),
        publish: (room, frame, size) => {
          rooms.publish(room, frame);
          this.#metrics.framesOut += size;
        },
      },
    );
    const handler = new ProtocolHandler(
      this.#directory,
      this.#hub,
      this.#log,
      this.#metrics,
      (ip) => this.#admission.mayValidate(ip),
    );
    this.#admission = new Admission(
      s,
      this.#hub,
      handler,
      this.#log,
      this.#metrics,
      this.#transport.memoryFactor,
    );
    this.#files = s.staticDir === false ? null : staticSource(s.staticDir ?? DEFAULT_STATIC_DIR);
    this.#fetch = routes({
      healthy: () => this.#state === "running",
      metrics: () =>
        this.#metrics.render(this.#admission.size, this.#hub.sizes(), this.#state !== "running") +
        (this.#broker.metrics?.() ?? ""),
      hooks: this.#hooks,
      runner: this.#runner,
      files: this.#files,
      upgrade: (req, ctx) => this.#upgrade(req, ctx),
    });
  }

  /** The bound port once listening; before that, the port from the options. */
  get port(): number {
    return this.#listener?.port ?? this.#settings.port;
  }

  /** The bound hostname once listening; before that, the one from the options. */
  get hostname(): string {
    return this.#listener?.hostname ?? this.#settings.hostname;
  }

  /** Whether the server is accepting connections. */
  get running(): boolean {
    return this.#state === "running";
  }

  /** WebSocket connections that count against the limits now. */
  get connectionCount(): number {
    return this.#admission.size;
  }

  /** The registered hooks (a read-only copy; register with the `on…` methods). */
  get callbacks(): Readonly<Callbacks> {
    return Object.freeze({ ...this.#hooks });
  }

  /** A snapshot of the counters behind `GET /metrics`. */
  get metrics(): MetricsSnapshot {
    return this.#metrics.snapshot();
  }

  /** Register `getServerData` (reference-style). */
  onGetServerData(fn: NonNullable<Callbacks["getServerData"]>): this {
    this.#hooks.getServerData = fn;
    return this;
  }
  /** Register `getUserData` (reference-style); cached user maps are dropped. */
  onGetUserData(fn: NonNullable<Callbacks["getUserData"]>): this {
    this.#hooks.getUserData = fn;
    this.#directory.invalidateAll();
    return this;
  }
  /** Register `staticRequest` (reference-style). */
  onStaticRequest(fn: NonNullable<Callbacks["staticRequest"]>): this {
    this.#hooks.staticRequest = fn;
    return this;
  }
  /** Register `validateDiscordUser` (reference-style). */
  onValidateDiscordUser(fn: NonNullable<Callbacks["validateDiscordUser"]>): this {
    this.#hooks.validateDiscordUser = fn;
    return this;
  }
  /** Register `getClientId` (reference-style). */
  onGetClientId(fn: NonNullable<Callbacks["getClientId"]>): this {
    this.#hooks.getClientId = fn;
    return this;
  }

  /** Which runtime adapter serves this server: `"deno"` or `"bun"`. */
  get runtime(): string {
    return this.#transport.runtime;
  }

  /**
   * On Bun, the `websocket` handlers to give a `Bun.serve` you own when you
   * mount dback with {@link WebSocketServer.fetch}; `undefined` on Deno
   * (which needs none).
   *
   * ```ts ignore
   * const dzone = new WebSocketServer();
   * await dzone.start({ listen: false });
   * Bun.serve({
   *   port: 8080,
   *   fetch: (req, server) => dzone.fetch(req, server),
   *   websocket: dzone.websocket!,
   * });
   * ```
   */
  get websocket(): MountedWebSocket | undefined {
    return this.#transport.websocket;
  }

  /**
   * Answer one HTTP request (or WebSocket upgrade), for mounting dback inside
   * another server: pass the runtime's second handler argument as `ctx`
   * (Deno's `info`, Bun's `server`; on Bun also pass
   * {@link WebSocketServer.websocket} as the server's `websocket` option).
   * Answers 503 unless the server is started.
   *
   * @example
   * ```ts
   * import { WebSocketServer } from "@dzone/dback";
   *
   * await using dzone = new WebSocketServer({ logLevel: "warn" });
   * await dzone.start({ listen: false });
   * await using app = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req, info) =>
   *   new URL(req.url).pathname === "/" ? new Response("my app") : dzone.fetch(req, info));
   * const res = await fetch(`http://127.0.0.1:${app.addr.port}/healthz`);
   * if ((await res.text()) !== "ok\n") throw new Error("not mounted");
   * ```
   */
  fetch(req: Request, ctx?: unknown): Promise<Response> {
    return this.#fetch(req, ctx);
  }

  /**
   * Start the broker and the data source, then listen (unless
   * `listen: false`). Resolves once the port is bound. Throws if already
   * started, if `staticDir` is not a readable directory, if the source fails
   * to start, or if the port cannot be bound.
   */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.#state !== "stopped") throw new Error(`WebSocketServer is already ${this.#state}`);
    this.#state = "starting";
    try {
      await this.#checkStaticDir();
      await this.#broker.open((e) => this.#deliver(e));
      await this.#source.start?.(this.#sink());
      if (options.listen !== false) {
        this.#listener = await this.#transport.serve({
          port: this.#settings.port,
          hostname: this.#settings.hostname,
          fetch: this.#fetch,
          onError: (err) => {
            this.#log.error(`request failed: ${err instanceof Error ? err.message : String(err)}`);
            return errorPage(500, "Internal Server Error");
          },
          log: (message) => this.#log.error(message),
        });
        this.#log.info(`dback ${VERSION} listening on ${this.url}`);
      }
      this.#startSweeper();
      this.#state = "running";
    } catch (err) {
      await this.#stopParts();
      this.#state = "stopped";
      throw err;
    }
  }

  /** `http://host:port` of the listener, with IPv6 addresses in brackets. */
  get url(): string {
    const h = this.hostname;
    return `http://${h.includes(":") ? `[${h}]` : h}:${this.port}`;
  }

  /**
   * Stop: refuse new connections (and report 503 on `/healthz`), stop the
   * source, close every WebSocket with 1001, wait up to `shutdownTimeoutMs`
   * for them, free the port. Returns by the deadline even if a peer never
   * answers. Stopping a stopped server does nothing.
   */
  stop(): Promise<void> {
    if (this.#state === "stopped") return Promise.resolve();
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#drain().finally(() => {
      this.#stopping = undefined;
      this.#listener = undefined;
      this.#state = "stopped";
    });
    return this.#stopping;
  }

  /** Same as {@link WebSocketServer.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  // The send-time check misses readers nothing is sent to (a quiet guild) and frames of
  // native fan-out; a timer applies the same rule to them, and settles dropped charges.
  #startSweeper(): void {
    const every = Math.max(50, Math.min(500, this.#settings.slowClientGraceMs / 4));
    this.#sweeper = setInterval(() => this.#admission.sweep(), every);
  }

  async #drain(): Promise<void> {
    this.#state = "stopping";
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    const s = this.#settings;
    this.#log.info(`shutting down: closing ${this.#admission.size} connection(s)`);
    const deadline = Date.now() + s.shutdownTimeoutMs;
    await this.#stopParts(true);
    this.#admission.closeAll(1001, "Server shutting down");
    while (this.#admission.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.#admission.size > 0) {
      this.#log.warn(`${this.#admission.forgetAll()} connection(s) did not close in time`);
    }
    const listener = this.#listener;
    if (listener) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 1000));
      const done = await Promise.race([listener.shutdown().then(() => "done" as const), late]);
      clearTimeout(timer);
      if (done === "late") this.#log.warn("the HTTP server did not finish in time; stopped anyway");
    }
    this.#log.info("stopped");
  }

  async #stopParts(logFailures = false): Promise<void> {
    for (
      const [what, part] of [
        ["data source", () => this.#source.stop?.()],
        ["broker", () => this.#broker.close()],
      ] as const
    ) {
      try {
        await part();
      } catch (err) {
        if (logFailures) {
          this.#log.error(`${what} failed to stop: ${err instanceof Error ? err.message : err}`);
        }
      }
    }
  }

  async #checkStaticDir(): Promise<void> {
    const dir = this.#settings.staticDir;
    if (dir === undefined || dir === false) return;
    if (dir instanceof URL && dir.protocol !== "file:") return;
    const path = dir instanceof URL ? fileURLToPath(dir) : dir;
    let ok = false;
    try {
      ok = (await stat(path)).isDirectory();
    } catch (err) {
      throw new Error(`staticDir ${path}: ${err instanceof Error ? err.message : err}`);
    }
    if (!ok) throw new Error(`staticDir ${path}: not a directory`);
  }

  #sink(): EventSink {
    const guard = <T>(name: string, fn: (e: T) => unknown) => (e: T) => {
      try {
        fn(e);
      } catch (err) {
        this.#log.error(
          `data source sent a bad ${name}: ${err instanceof Error ? err.message : err}`,
        );
      }
    };
    return {
      presence: guard("presence", (e: PresenceEvent) => this.broadcastPresence(e)),
      message: guard("message", (e: ChatEvent) => this.broadcastMessage(e)),
      clientId: guard("client id", (e: ClientIdEvent) => this.broadcastClientIdUpdate(e)),
      serverGone: guard("server removal", (server: string) => {
        this.#broker.publish({ type: "server-gone", event: { server } });
      }),
    };
  }

  #upgrade(req: Request, ctx: RequestContext): Response {
    if (this.#state !== "running") {
      this.#metrics.reject("draining");
      return errorPage(503, "Service Unavailable");
    }
    const ip = this.#transport.clientIp(req, ctx);
    if (ip === null) {
      // The peer reset before we could see its address: nothing to upgrade.
      this.#metrics.reject("peer_gone");
      return errorPage(400, "Bad Request");
    }
    const origin = req.headers.get("origin");
    const refusal = this.#admission.check(ip, origin, new URL(req.url).origin);
    if (refusal) return errorPage(refusal.status, refusal.title);
    const conn = this.#admission.admit(ip);
    try {
      const res = this.#transport.upgrade(req, ctx, {
        idleTimeoutSeconds: this.#settings.idleTimeoutSeconds,
        maxPayloadBytes: this.#settings.maxFrameBytes,
        maxBufferedBytes: this.#settings.maxBufferedBytes,
      }, conn);
      this.#log.info(`connected from ${ip}${origin ? ` (origin ${quote(origin)})` : ""}`, conn.id);
      return res;
    } catch (err) {
      conn.drop(1002, "Bad upgrade");
      this.#log.warn(`bad upgrade from ${ip}: ${err instanceof Error ? err.message : err}`);
      return errorPage(400, "Bad Request");
    }
  }

  #deliver(e: ServerEvent): number {
    switch (e.type) {
      case "presence":
        // The next joiner must see this change in its user map.
        this.#directory.apply(e.event);
        return this.#hub.publish(e.event.server, presenceFrame(e.event));
      case "message":
        return this.#hub.publish(e.event.server, messageFrame(e.event));
      case "update-clientid":
        return this.#hub.publish(e.event.server, clientIdFrame(e.event));
      case "server-gone": {
        // Its viewers are told as if they had asked for a server that does not exist.
        const members = this.#hub.members(e.event.server);
        this.#directory.invalidate(e.event.server);
        for (const conn of members) {
          this.#admission.leave(conn);
          conn.sendError(ERRORS.noSuchServer);
        }
        if (members.length) {
          this.#log.info(`server ${e.event.server} is gone: told ${members.length} viewer(s)`);
        }
        return members.length;
      }
    }
  }

  /**
   * Send a chat message to every connection joined to `server`.
   * Returns how many connections it reached. Throws a `TypeError` on invalid input.
   *
   * @example
   * ```ts
   * import { WebSocketServer } from "@dzone/dback";
   * const server = new WebSocketServer();
   * const reached = server.broadcastMessage({ server: "1", uid: "42", message: "hi", channel: "1" });
   * if (reached !== 0) throw new Error("nobody is joined yet");
   * ```
   */
  broadcastMessage(event: ChatEvent): number {
    const e = check(messageEventSchema, event, "broadcastMessage");
    this.#metrics.broadcasts.message++;
    return this.#broker.publish({ type: "message", event: e });
  }

  /**
   * Send a presence change to every connection joined to `server`. Include
   * `username` (and `roleColor`) for a user the clients may not know yet;
   * `delete: true` removes the user. Returns how many connections it reached.
   *
   * @example
   * ```ts
   * import { WebSocketServer } from "@dzone/dback";
   * const server = new WebSocketServer();
   * let error = "";
   * try {
   *   server.broadcastPresence({ server: "1", uid: "42", status: "away" as "idle" });
   * } catch (err) {
   *   error = String(err);
   * }
   * if (!error.includes("status")) throw new Error("bad input must be refused");
   * ```
   */
  broadcastPresence(event: PresenceEvent): number {
    const e = check(presenceEventSchema, event, "broadcastPresence");
    this.#metrics.broadcasts.presence++;
    return this.#broker.publish({ type: "presence", event: e });
  }

  /**
   * Tell every connection joined to `server` its new OAuth2 client id.
   * Returns how many connections it reached.
   *
   * @example
   * ```ts
   * import { WebSocketServer } from "@dzone/dback";
   * const server = new WebSocketServer();
   * if (server.broadcastClientIdUpdate({ server: "1", clientId: "1234567890" }) !== 0) {
   *   throw new Error("nobody is joined yet");
   * }
   * ```
   */
  broadcastClientIdUpdate(event: ClientIdEvent): number {
    const e = check(clientIdEventSchema, event, "broadcastClientIdUpdate");
    this.#metrics.broadcasts["update-clientid"]++;
    return this.#broker.publish({ type: "update-clientid", event: e });
  }

  /** Drop the cached user map of a server (or all), e.g. after changing users without a broadcast. */
  invalidateUserData(serverId?: string): void {
    if (serverId === undefined) this.#directory.invalidateAll();
    else this.#directory.invalidate(serverId);
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, method: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new TypeError(`${method}: ${describeZodError(r.error)}`);
  return r.data;
}
