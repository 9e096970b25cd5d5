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
import type {
  ChatEvent,
  ClientIdEvent,
  DiscordUser,
  PresenceEvent,
  ServerMap,
  UserMap,
} from "./protocol.ts";

/**
 * Where a data source sends what viewers should see. The server gives one to
 * {@link DataSource.start}; each call is the same as the server's matching
 * broadcast method.
 *
 * @example
 * ```ts
 * import type { EventSink } from "@dzone/dback";
 * const seen: string[] = [];
 * const sink: EventSink = {
 *   presence: (e) => seen.push(`${e.uid} ${e.status}`),
 *   message: (e) => seen.push(`${e.uid}: ${e.message}`),
 *   clientId: (e) => seen.push(e.clientId),
 * };
 * sink.presence({ server: "1", uid: "42", status: "idle" });
 * if (seen[0] !== "42 idle") throw new Error("unexpected");
 * ```
 */
export interface EventSink {
  /** A presence change, a new user (with `username`) or a removal (`delete: true`). */
  presence(event: PresenceEvent): void;
  /** A chat message. */
  message(event: ChatEvent): void;
  /** A new OAuth2 client id for a server. */
  clientId(event: ClientIdEvent): void;
  /**
   * A server is gone for good (e.g. the bot was removed from the guild): its
   * viewers get the protocol's "Sorry, couldn't connect to that Discord
   * server." error and leave the room. Optional: sources whose servers never
   * vanish need not call it, sinks that cannot act on it may omit it.
   */
  serverGone?(serverId: string): void;
}

/**
 * One source of d-zone data. `getServerData` and `getUserData` are required;
 * the rest are optional. Results are validated by the server, so a source may
 * return plain objects.
 *
 * @example
 * ```ts
 * import type { DataSource } from "@dzone/dback";
 * const source: DataSource = {
 *   getServerData: () => ({ "1": { id: "home", name: "Home", default: true } }),
 *   getUserData: () => ({ "7": { uid: "7", username: "ada", status: "online" } }),
 * };
 * const users = await source.getUserData("1");
 * if (users["7"].username !== "ada") throw new Error("unexpected");
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
  /** Begin producing events into `sink`. The server awaits it in `start()`; a rejection fails `start()`. */
  start?(sink: EventSink): void | Promise<void>;
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
