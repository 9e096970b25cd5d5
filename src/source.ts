/**
 * The data-source seam: where servers, users, validation and live events
 * come from. Mock mode, the Discord gateway source and plain user callbacks
 * are implementations; the server consumes exactly one. Events flow out of a
 * source through the {@link EventSink} the server hands it at start; nothing
 * below the server calls back into a source except {@link DataSource.watch}.
 *
 * @module
 */
import type { MaybePromise } from "./callbacks.ts";
import type { ServerEvent } from "./events.ts";
import type { DiscordUser, ServerMap, UserMap } from "./protocol.ts";

/**
 * Where a data source sends what viewers should see. The server gives one to
 * {@link DataSource.start}; `emit` checks the event against the event table
 * (a bad one is logged and dropped) and publishes it like
 * `WebSocketServer.broadcast` does.
 *
 * @example
 * ```ts
 * import { type EventSink, MockSource, type ServerEvent } from "@dzone/dback";
 * const seen: ServerEvent[] = [];
 * const sink: EventSink = { emit: (e) => seen.push(e) };
 * const mock = new MockSource({ random: () => 0 });
 * mock.start(sink);
 * mock.tickPresence("232769614004748288");
 * mock.stop();
 * const first = seen[0];
 * if (first?.type !== "presence" || first.event.username !== "vegeta897") {
 *   throw new Error(JSON.stringify(seen));
 * }
 * ```
 */
export interface EventSink {
  /**
   * One event for the viewers of `event.event.server`: a presence change, a
   * chat message, a new OAuth2 client id, or a server gone for good.
   */
  emit(event: ServerEvent): void;
}

/**
 * What the server hands a data source at start besides the sink.
 *
 * @example
 * ```ts
 * import { type DataSource, type LogRecord, type SourceContext, WebSocketServer } from "@dzone/dback";
 * const records: LogRecord[] = [];
 * const source: DataSource = {
 *   getServerData: () => ({}),
 *   getUserData: () => ({}),
 *   start: (_sink, context?: SourceContext) => context?.log.warn("my source is up"),
 * };
 * await using server = new WebSocketServer({ source, logSink: (r) => records.push(r) });
 * await server.start({ listen: false });
 * if (!records.some((r) => r.level === "warn" && r.message === "my source is up")) {
 *   throw new Error("the source logs through the server's logger");
 * }
 * ```
 */
export interface SourceContext {
  /** The server's logger: lines below the server's `logLevel` are dropped, the rest go to its `logSink`. */
  readonly log: {
    /** Detail, off by default. */
    debug(message: string): void;
    /** Normal lifecycle events. */
    info(message: string): void;
    /** Something went wrong and was handled. */
    warn(message: string): void;
    /** Something the operator should look at. */
    error(message: string): void;
  };
}

/**
 * One source of d-zone data. `getServerData` and `getUserData` are required;
 * the rest are optional. Results are validated by the server, so a source may
 * return plain objects.
 *
 * @example
 * ```ts
 * import { type DataSource, WebSocketServer } from "@dzone/dback";
 * const source: DataSource = {
 *   getServerData: () => ({ "1": { id: "home", name: "Home", default: true } }),
 *   getUserData: () => ({ "7": { uid: "7", username: "ada", status: "online" } }),
 * };
 * await using server = new WebSocketServer({ source, port: 0, hostname: "127.0.0.1", logLevel: "warn" });
 * await server.start();
 * const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
 * const frames: string[] = [];
 * await new Promise<void>((done) => {
 *   ws.onmessage = (e) => {
 *     frames.push(e.data);
 *     if (frames.length === 1) ws.send('{"type":"connect","data":{"server":"home"}}');
 *     else done();
 *   };
 * });
 * ws.close();
 * const join = JSON.parse(frames[1]);
 * if (join.type !== "server-join" || join.data.users["7"].username !== "ada") throw new Error(frames[1]);
 * ```
 */
export interface DataSource {
  /** The server map (Discord id → entry). */
  getServerData(): MaybePromise<ServerMap>;
  /** The user map of one Discord server. */
  getUserData(serverId: string): MaybePromise<UserMap>;
  /** Whether an OAuth2 token and claimed user may join a passworded server. Absent: nobody may. */
  validateDiscordUser?(token: string, user: DiscordUser, serverId: string): MaybePromise<boolean>;
  /** The OAuth2 application id of a server, when there is one. */
  getClientId?(serverId: string): MaybePromise<string | null | undefined>;
  /**
   * Begin producing events into `sink`; `context.log` is the server's logger
   * (its level and sink), for the source's own lines. The server awaits it
   * in `start()`; a rejection fails `start()`.
   */
  start?(sink: EventSink, context?: SourceContext): void | Promise<void>;
  /** Whether a server has viewers now (first joined / last left): lets a source work only where watched. */
  watch?(serverId: string, active: boolean): void;
  /** Stop producing events and free resources. The server awaits it in `stop()`. */
  stop?(): void | Promise<void>;
  /**
   * What the source is and how it is doing, for `/api/status` and `/healthz`
   * (no user data): `kind` such as `mock`, `discord`, `callbacks`; `state`
   * is `ready` when it serves live data, else e.g. `connecting`, `reconnecting`, `failed`.
   */
  state?(): { kind: string; state: string };
}
