/**
 * `WebSocketServer`: wires the pieces (transport, admission, protocol
 * handler, hub, directory, data source, broker), owns the lifecycle, and
 * offers the broadcasts.
 *
 * @module
 */
import { Admission } from "./_admission.ts";
import { ClientAddresses } from "./_client_address.ts";
import { startMetricsListener } from "./_metrics_port.ts";
import { type Broker, LocalBroker } from "./broker.ts";
import { CallbackRunner } from "./_callback_runner.ts";
import type { Callbacks } from "./callbacks.ts";
import { type Connection, sweepSlowClients } from "./_connection.ts";
import { Directory } from "./_directory.ts";
import { errorText } from "./_errors.ts";
import { EventRouter } from "./_events.ts";
import type { ChatEvent, ClientIdEvent, PresenceEvent, ServerEvent } from "./events.ts";
import { ProtocolHandler } from "./_handler.ts";
import { routes } from "./_http.ts";
import { Hub } from "./_hub.ts";
import { JoinQueue } from "./_join_queue.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./_metrics.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import { parseOptions, type ServerOptions, type Settings } from "./options.ts";
import type { DataSource } from "./source.ts";
import { MockSource } from "./sources/mock.ts";
import { defaultBase, withCallbacks } from "./sources/_callbacks.ts";
import { checkStaticDir, errorPage, PAGE_FILES, staticSource } from "./_static.ts";
import { pickTransport } from "./transport/mod.ts";
import type { Listener, MountedWebSocket, RequestContext, Transport } from "./transport/types.ts";
import { upgrader } from "./_upgrade.ts";
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
  #directory: Directory;
  #hub: Hub<Connection>;
  #admission: Admission;
  #joinQueue: JoinQueue;
  #events: EventRouter;
  #transport: Transport;
  #stopSweeper: (() => void) | undefined;
  #fetch: (req: Request, ctx: RequestContext) => Promise<Response>;
  #listener: Listener | undefined;
  #metricsListener: Listener | undefined;
  #state: "stopped" | "starting" | "running" | "stopping" = "stopped";
  #stopping: Promise<void> | undefined;

  /**
   * Create a server; nothing listens until {@link WebSocketServer.start}.
   * Throws a `TypeError` on invalid options, and an `Error` when the
   * transport cannot run on this runtime.
   */
  constructor(options: ServerOptions = {}) {
    const s = this.#settings = parseOptions(options);
    this.#log = new Logger(s.logLevel, s.logSink);
    const limits = {
      idleTimeoutSeconds: s.idleTimeoutSeconds,
      maxPayloadBytes: s.maxFrameBytes,
      maxBufferedBytes: s.maxBufferedBytes,
    };
    // Bun closes a socket past its limit itself: a join on its way may take a socket past
    // maxBufferedBytes (the global budget bounds the sum), so there the sweep applies the rule.
    this.#transport = pickTransport(s.transport, {
      ...limits,
      maxBufferedBytes: Math.min(s.maxBufferedBytes + s.maxTotalBufferedBytes, 2 ** 31 - 1),
    });
    this.#hooks = { ...s.callbacks };
    // Callbacks that supply the data run over an inert base, never over the mock world.
    this.#source = withCallbacks(
      s.source ?? defaultBase(new MockSource(), this.#hooks),
      this.#hooks,
    );
    this.#broker = s.broker ?? new LocalBroker();
    const runner = new CallbackRunner(s.callbackTimeoutMs, this.#log, this.#metrics);
    this.#directory = new Directory(this.#source, runner, s.userDataCacheMs, this.#log);
    this.#hub = new Hub<Connection>((serverId, active) => {
      this.#source.watch?.(serverId, active);
      this.#broker.watch(serverId, active);
    }, this.#transport.rooms);
    this.#joinQueue = new JoinQueue(s, () => this.#admission.unsentBytes(), this.#metrics);
    const handler = new ProtocolHandler(
      this.#directory,
      this.#hub,
      this.#log,
      this.#metrics,
      this.#joinQueue,
    );
    const admission = this.#admission = new Admission(
      s,
      this.#hub,
      handler,
      this.#log,
      this.#metrics,
    );
    this.#events = new EventRouter({
      broker: this.#broker,
      hub: this.#hub,
      directory: this.#directory,
      leave: (conn) => admission.leave(conn),
      log: this.#log,
      metrics: this.#metrics,
    });
    this.#fetch = routes({
      healthy: () => this.#state === "running",
      metrics: s.metrics === undefined ? () => this.#metricsText() : null,
      status: () => this.#status(),
      sourceState: () => this.#source.state?.(),
      builtinPage: s.staticDir === undefined,
      debug: (message) => this.#log.debug(message),
      hooks: this.#hooks,
      runner,
      files: s.staticDir === false
        ? null
        : s.staticDir === undefined
        ? staticSource(DEFAULT_STATIC_DIR, PAGE_FILES)
        : staticSource(s.staticDir),
      upgrade: upgrader({
        running: () => this.#state === "running",
        transport: this.#transport,
        clients: new ClientAddresses(s.trustProxy, s.ipv6Prefix),
        ownOrigins: () => this.#ownOrigins(),
        admission,
        limits,
        log: this.#log,
        metrics: this.#metrics,
      }),
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
    this.#joinQueue.unsentBytes(); // a gauge: measured when read
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

  /** Which transport serves this server: `"deno"`, `"bun"` or `"node"`. */
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
      const dir = this.#settings.staticDir;
      if (dir !== undefined && dir !== false) await checkStaticDir(dir);
      await this.#broker.open((e) => this.#events.deliver(e));
      await this.#source.start?.(this.#events.sink(), { log: this.#log });
      if (options.listen !== false) {
        const fetch = this.#fetch;
        this.#listener = await this.#transport.serve({
          port: this.#settings.port,
          hostname: this.#settings.hostname,
          tls: this.#settings.tls,
          headerTimeoutMs: this.#settings.headerTimeoutMs,
          // From the network, a request without Host is malformed (mounted use may build one).
          fetch: (req, ctx) =>
            req.headers.has("host") ? fetch(req, ctx) : (
              this.#log.debug("request without a Host header: 400"), errorPage(400, "Bad Request")
            ),
          onError: (err) => {
            this.#log.error(`request failed: ${errorText(err)}`);
            return errorPage(500, "Internal Server Error");
          },
          log: (message) => this.#log.error(message),
        });
        this.#log.info(`dback ${VERSION} listening on ${this.url}`);
      }
      const m = this.#settings.metrics;
      if (m) {
        const l = await startMetricsListener(
          m.port,
          m.hostname ?? this.#settings.hostname,
          () => this.#metricsText(),
        );
        this.#metricsListener = l;
        this.#log.info(`/metrics on ${l.hostname}:${l.port}`);
      }
      if (this.#hub.native) {
        this.#stopSweeper = sweepSlowClients(
          (fn) => this.#hub.each(fn),
          this.#settings.slowClientGraceMs,
        );
      }
      this.#state = "running";
    } catch (err) {
      await this.#stopParts();
      // A port that did bind (the viewer port, when the metrics port did not) is let go.
      for (const l of [this.#metricsListener, this.#listener]) await l?.shutdown().catch(() => {});
      this.#metricsListener = this.#listener = undefined;
      this.#state = "stopped";
      throw err;
    }
  }

  /** `http://host:port` (`https://` with TLS) of the listener, with IPv6 addresses in brackets. */
  get url(): string {
    const h = this.hostname;
    return `${this.#settings.tls ? "https" : "http"}://${
      h.includes(":") ? `[${h}]` : h
    }:${this.port}`;
  }

  /** The port `/metrics` listens on when it has its own (`metrics: { port }`), once started. */
  get metricsPort(): number | undefined {
    return this.#metricsListener?.port;
  }

  #metricsText(): string {
    this.#joinQueue.unsentBytes(); // a gauge: measured when read
    const m = this.#metrics.render(this.#admission.size, this.#hub.sizes(), !this.running);
    return m + (this.#broker.metrics?.() ?? "");
  }

  // Counts only: nothing here names a user or a server.
  #status(): Record<string, unknown> {
    return {
      version: VERSION,
      runtime: this.#transport.runtime,
      state: this.#state,
      viewers: this.#admission.size,
      rooms: this.#hub.sizes().size,
      trackedIps: this.#admission.trackedIps,
      source: this.#source.state?.() ?? { kind: "custom", state: "running" },
      cluster: this.#broker.role?.() ?? "single",
    };
  }

  // Origins the page of this server is served under: configured, and the listener's own.
  #ownOrigins(): string[] {
    const own = [...this.#settings.publicOrigins];
    const h = this.hostname;
    if (this.#listener && h !== "0.0.0.0" && h !== "::") own.push(new URL(this.url).origin);
    return own;
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

  async #drain(): Promise<void> {
    this.#state = "stopping";
    this.#stopSweeper?.();
    this.#stopSweeper = undefined;
    this.#joinQueue.close();
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
    await this.#metricsListener?.shutdown();
    this.#metricsListener = undefined;
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
          this.#log.error(`${what} failed to stop: ${errorText(err)}`);
        }
      }
    }
  }

  /**
   * Send an event to every connection joined to `event.event.server` (on
   * every instance, with a cluster broker): any type of the event table.
   * Returns how many connections of this instance it reached. Throws a
   * `TypeError` on an event the table refuses.
   *
   * @example
   * ```ts
   * import { WebSocketServer } from "@dzone/dback";
   * const server = new WebSocketServer({ logLevel: "silent" });
   * let refused = "";
   * try {
   *   server.broadcast({ type: "kick", event: { server: "1" } } as never);
   * } catch (err) {
   *   refused = String(err);
   * }
   * if (!refused.includes("type must be one of presence, message")) throw new Error(refused);
   * ```
   */
  broadcast(event: ServerEvent): number {
    return this.#events.publish(event, "library", "broadcast");
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
    return this.#events.publish({ type: "message", event }, "library", "broadcastMessage");
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
    return this.#events.publish({ type: "presence", event }, "library", "broadcastPresence");
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
    const e = { type: "update-clientid", event } as const;
    return this.#events.publish(e, "library", "broadcastClientIdUpdate");
  }

  /** Drop the cached user map of a server (or all), e.g. after changing users without a broadcast. */
  invalidateUserData(serverId?: string): void {
    if (serverId === undefined) this.#directory.invalidateAll();
    else this.#directory.invalidate(serverId);
  }
}
