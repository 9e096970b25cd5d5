/**
 * `WebSocketServer`: the public face of one server. It owns the lifecycle
 * (start, stop, drain) and offers the API (hooks, broadcasts, mounting); its
 * parts are built once by `_compose.ts`.
 *
 * @module
 */
import type { Callbacks } from "./callbacks.ts";
import { warmClientFrames } from "./_client_frames.ts";
import { warmJoinPath } from "./_warm.ts";
import { compose, type Parts } from "./_compose.ts";
import { sweepSlowClients } from "./_slow_client.ts";
import { drainConnections, Ports, stopParts } from "./_lifecycle.ts";
import type { ChatEvent, ClientIdEvent, PresenceEvent, ServerEvent } from "./events.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./_metrics.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import {
  DEFAULT_STATIC_DIR,
  parseOptions,
  type ServerOptions,
  type Settings,
  type StartOptions,
} from "./options.ts";
import { checkStaticDir } from "./_static.ts";
import type { MountedWebSocket } from "./transport/types.ts";
import { VERSION } from "./version.ts";

/**
 * The d-zone backend. One port serves the WebSocket (on any path), static
 * files, `GET /api/version`, `GET /healthz` and `GET /metrics`.
 *
 * @example
 * ```ts
 * import { VERSION, WebSocketServer } from "@dzone/dback";
 *
 * await using server = new WebSocketServer({ port: 0, hostname: "127.0.0.1", logLevel: "warn" });
 * await server.start();
 * const res = await fetch(`http://127.0.0.1:${server.port}/api/version`);
 * const { version } = await res.json();
 * if (version !== VERSION) throw new Error(`version ${version}`);
 * ```
 */
export class WebSocketServer implements AsyncDisposable {
  #settings: Settings;
  #log: Logger;
  #metrics = new Metrics();
  #p: Parts;
  #stopSweeper: (() => void) | undefined;
  #ports = new Ports();
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
    this.#p = compose(s, this.#log, this.#metrics, {
      state: () => this.#state,
      url: () => {
        const h = this.#ports.viewer?.hostname;
        return h === undefined || h === "0.0.0.0" || h === "::" ? undefined : this.url;
      },
    }, DEFAULT_STATIC_DIR);
  }

  /** The bound port once listening; before that, the port from the options. */
  get port(): number {
    return this.#ports.viewer?.port ?? this.#settings.port;
  }

  /** The bound hostname once listening; before that, the one from the options. */
  get hostname(): string {
    return this.#ports.viewer?.hostname ?? this.#settings.hostname;
  }

  /** Whether the server is accepting connections. */
  get running(): boolean {
    return this.#state === "running";
  }

  /** WebSocket connections that count against the limits now. */
  get connectionCount(): number {
    return this.#p.admission.size;
  }

  /** The registered hooks (a read-only copy; register with the `on…` methods). */
  get callbacks(): Readonly<Callbacks> {
    return Object.freeze({ ...this.#p.hooks });
  }

  /** A snapshot of the counters behind `GET /metrics`. */
  get metrics(): MetricsSnapshot {
    this.#p.joinQueue.unsentBytes(); // a gauge: measured when read
    return this.#metrics.snapshot();
  }

  /** Register `getServerData` (reference-style); the cached server list is dropped. */
  onGetServerData(fn: NonNullable<Callbacks["getServerData"]>): this {
    this.#p.hooks.getServerData = fn;
    this.#p.directory.forgetServers();
    return this;
  }
  /** Register `getUserData` (reference-style); cached user maps are dropped. */
  onGetUserData(fn: NonNullable<Callbacks["getUserData"]>): this {
    this.#p.hooks.getUserData = fn;
    this.#p.directory.invalidateAll();
    return this;
  }
  /** Register `staticRequest` (reference-style). */
  onStaticRequest(fn: NonNullable<Callbacks["staticRequest"]>): this {
    this.#p.hooks.staticRequest = fn;
    return this;
  }
  /** Register `validateDiscordUser` (reference-style). */
  onValidateDiscordUser(fn: NonNullable<Callbacks["validateDiscordUser"]>): this {
    this.#p.hooks.validateDiscordUser = fn;
    return this;
  }
  /** Register `getClientId` (reference-style); cached client ids are dropped. */
  onGetClientId(fn: NonNullable<Callbacks["getClientId"]>): this {
    this.#p.hooks.getClientId = fn;
    this.#p.directory.forgetClientId();
    return this;
  }

  /** Which transport serves this server: `"deno"`, `"bun"` or `"node"`. */
  get runtime(): string {
    return this.#p.transport.runtime;
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
   *
   * @example
   * ```ts
   * import { WebSocketServer } from "@dzone/dback";
   * // This example runs on Deno, whose transport needs no handlers of yours.
   * if (new WebSocketServer().websocket !== undefined) throw new Error("none on Deno");
   * ```
   */
  get websocket(): MountedWebSocket | undefined {
    return this.#p.transport.websocket;
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
    try {
      return Promise.resolve(this.#p.fetch(req, ctx));
    } catch (err) {
      return Promise.reject(err);
    }
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
    const s = this.#settings;
    try {
      if (s.staticDir !== undefined && s.staticDir !== false) await checkStaticDir(s.staticDir);
      // Before the first viewer, not during the join storm after a restart.
      warmClientFrames();
      await warmJoinPath({ settings: s });
      await this.#p.broker.open((e) => this.#p.events.deliver(e));
      await this.#p.source.start?.(this.#p.events.sink(), { log: this.#log });
      await this.#ports.open({
        listen: options.listen !== false,
        transport: this.#p.transport,
        settings: s,
        fetch: this.#p.fetch,
        metricsText: this.#p.metricsText,
        log: this.#log,
      });
      if (this.#ports.viewer) this.#log.info(`dback ${VERSION} listening on ${this.url}`);
      // On every runtime: quiet guilds and native fan-out escape the per-send check, and
      // dropped connections' charges settle here.
      this.#stopSweeper = sweepSlowClients((fn) => fn(this.#p.admission), s.slowClientGraceMs);
      this.#state = "running";
    } catch (err) {
      await stopParts(this.#parts());
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
    return this.#ports.metrics?.port;
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
    this.#p.joinQueue.close();
    this.#log.info(`shutting down: closing ${this.#p.admission.size} connection(s)`);
    const started = Date.now();
    await stopParts(this.#parts(), this.#log);
    const left = this.#settings.shutdownTimeoutMs - (Date.now() - started);
    await drainConnections(this.#p.admission, Math.max(0, left), this.#log);
    await this.#ports.close(this.#log);
    this.#log.info("stopped");
  }

  #parts(): Array<readonly [string, () => unknown]> {
    const { source, broker } = this.#p;
    return [["data source", () => source.stop?.()], ["broker", () => broker.close()]];
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
    return this.#p.events.publish(event, "library", "broadcast");
  }

  /**
   * `broadcast({ type: "message", event })`, as d-back names it: a chat
   * message for every connection joined to `event.server`. Returns how many
   * it reached; throws a `TypeError` on invalid input.
   */
  broadcastMessage(event: ChatEvent): number {
    return this.#p.events.publish({ type: "message", event }, "library", "broadcastMessage");
  }

  /**
   * `broadcast({ type: "presence", event })`, as d-back names it. Include
   * `username` (and `roleColor`) for a user the clients may not know yet;
   * `delete: true` removes the user.
   */
  broadcastPresence(event: PresenceEvent): number {
    return this.#p.events.publish({ type: "presence", event }, "library", "broadcastPresence");
  }

  /** `broadcast({ type: "update-clientid", event })`, as d-back names it. */
  broadcastClientIdUpdate(event: ClientIdEvent): number {
    const e = { type: "update-clientid", event } as const;
    return this.#p.events.publish(e, "library", "broadcastClientIdUpdate");
  }

  /** Drop the cached user map of a server (or all of them and the server list), e.g. after changing data without a broadcast. */
  invalidateUserData(serverId?: string): void {
    if (serverId === undefined) this.#p.directory.invalidateAll();
    else this.#p.directory.invalidate(serverId);
  }
}
