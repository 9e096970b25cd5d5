/**
 * The server's view of its data: the server list and each server's user map,
 * asked of one data source. Results are validated once; concurrent joins
 * wait on one call; the user map is kept as one serialised fragment per user
 * and patched by presence events, so a join storm costs one string join per
 * change of the map, never a callback call or a full re-serialisation per
 * presence.
 *
 * @module
 */
import {
  type CallbackRunner,
  clientIdResultSchema,
  type Guarded,
  validationResultSchema,
} from "./_callback_runner.ts";
import type { DataSource } from "./source.ts";
import {
  type DiscordUser,
  lenientServerMapSchema,
  lenientUserMapSchema,
  normaliseServers,
  type ServerInfo,
  type UserMap,
} from "./protocol.ts";
import type { Logger } from "./log.ts";
import { serverListFrame } from "./_frames.ts";
import type { PresenceEvent } from "./events.ts";

/** One server's user map as wire fragments (`"key":{...}`), keyed by user id. */
class UserMapCache {
  #fragments = new Map<string, string>();
  #json: string | null = null;
  expires = Number.POSITIVE_INFINITY;

  constructor(map: UserMap) {
    for (const [key, u] of Object.entries(map)) {
      const uid = u.uid ?? key;
      this.#set(uid, key, uid, u.username, u.status, u.roleColor ?? "#ffffff");
    }
  }

  #users = new Map<string, { key: string; username: string; roleColor: string }>();

  #set(
    uid: string,
    key: string,
    wireUid: string,
    username: string,
    status: string,
    roleColor: string,
  ) {
    this.#users.set(uid, { key, username, roleColor });
    this.#fragments.set(
      uid,
      `${JSON.stringify(key)}:${JSON.stringify({ uid: wireUid, username, status, roleColor })}`,
    );
    this.#json = null;
  }

  /** Apply a presence event; an unknown user without a name cannot be drawn, so it is skipped. */
  apply(e: PresenceEvent): void {
    const known = this.#users.get(e.uid);
    if (e.delete) {
      if (known && this.#fragments.delete(e.uid)) {
        this.#users.delete(e.uid);
        this.#json = null;
      }
      return;
    }
    const username = e.username ?? known?.username;
    if (username === undefined) return;
    this.#set(
      e.uid,
      known?.key ?? e.uid,
      e.uid,
      username,
      e.status,
      e.roleColor ?? known?.roleColor ?? "#ffffff",
    );
  }

  get json(): string {
    return this.#json ??= `{${[...this.#fragments.values()].join(",")}}`;
  }
}

/** One answer of `getServerData`: the servers and, made on first use, their `server-list` frame. */
export class ServerList {
  #frame: string | undefined;
  /** The enabled servers, normalised. */
  readonly servers: ServerInfo[];
  /** When this answer goes stale (ms since the epoch). */
  readonly expires: number;

  /** Wrap one normalised answer, reusable until `expires`. */
  constructor(servers: ServerInfo[], expires: number) {
    this.servers = servers;
    this.expires = expires;
  }

  /** The `server-list` frame, serialised once per answer. */
  get frame(): string {
    return this.#frame ??= serverListFrame(this.servers);
  }
}

type Loading = { promise: Promise<Guarded<UserMapCache>>; pending: PresenceEvent[] };

/** Reads server and user data from a data source. */
export class Directory {
  #source: DataSource;
  #log: Logger;
  #runner: CallbackRunner;
  #cacheMs: number;
  #servers: Promise<Guarded<ServerList>> | undefined;
  #serverList: ServerList | undefined;
  #serversGeneration = 0;
  // One entry per server a viewer joined (servers come from the list): bounded by it.
  #clientIds = new Map<string, { value: string; expires: number }>();
  #clientIdsGeneration = 0;
  #users = new Map<string, UserMapCache>();
  #loading = new Map<string, Loading>();

  /**
   * `cacheMs` is how long a user map may be reused before the source is
   * asked again (presence events keep it current meanwhile).
   */
  constructor(source: DataSource, runner: CallbackRunner, cacheMs: number, log: Logger) {
    this.#log = log;
    this.#source = source;
    this.#runner = runner;
    this.#cacheMs = cacheMs;
  }

  /**
   * The enabled servers, normalised, and their `server-list` frame. Concurrent
   * callers share one call; an answer is reused for `cacheMs` (like a user
   * map), so a connection storm costs one source call and one validation,
   * not one per open and per `connect`. Dropped early by {@link forgetServers}.
   */
  servers(conn?: string): Promise<Guarded<ServerList>> {
    const hit = this.#serverList;
    if (hit && hit.expires > Date.now()) return Promise.resolve({ ok: true, value: hit });
    if (this.#servers) return this.#servers;
    const generation = this.#serversGeneration;
    this.#servers = this.#runner
      .run("getServerData", () => this.#source.getServerData(), lenientServerMapSchema, conn)
      .then((r): Guarded<ServerList> => {
        if (!r.ok) return r; // failures are not cached
        this.#skipped("getServerData", r.value.skipped);
        const list = new ServerList(
          normaliseServers(r.value.map),
          this.#cacheMs > 0 ? Date.now() + this.#cacheMs : 0,
        );
        // An answer that started before a change was signalled may predate it.
        if (this.#cacheMs > 0 && generation === this.#serversGeneration) {
          this.#serverList = list;
        }
        return { ok: true, value: list };
      });
    // Shared only while in flight: afterwards the cached answer (if any) serves.
    this.#servers.finally(() => this.#servers = undefined);
    return this.#servers;
  }

  /**
   * The list again when `stale` is the cached answer (a `connect` named a
   * server it lacks, which may have been added since): a new server is
   * joinable at once, while a known one costs no call.
   */
  refreshServers(stale: ServerList, conn?: string): Promise<Guarded<ServerList>> {
    if (this.#serverList !== stale) {
      return Promise.resolve({ ok: true, value: this.#serverList ?? stale });
    }
    this.forgetServers();
    return this.servers(conn);
  }

  /** Forget the cached server list: the next viewer asks the source afresh. */
  forgetServers(): void {
    this.#serverList = undefined;
    this.#servers = undefined;
    this.#serversGeneration++;
  }

  /** The serialised user map of one Discord server. */
  async usersJson(serverId: string, conn?: string): Promise<Guarded<string>> {
    const hit = this.#users.get(serverId);
    if (hit && hit.expires > Date.now()) return { ok: true, value: hit.json };
    let loading = this.#loading.get(serverId);
    if (!loading) {
      const pending: PresenceEvent[] = [];
      const promise = this.#runner
        .run("getUserData", () => this.#source.getUserData(serverId), lenientUserMapSchema, conn)
        .then((r): Guarded<UserMapCache> => {
          this.#loading.delete(serverId);
          if (!r.ok) return r; // failures are not cached
          this.#skipped(`getUserData(${serverId})`, r.value.skipped);
          const cache = new UserMapCache(r.value.map);
          // Events that arrived while the source was answering may be newer than its answer.
          for (const e of pending) cache.apply(e);
          cache.expires = this.#cacheMs > 0 ? Date.now() + this.#cacheMs : 0;
          if (this.#cacheMs > 0) this.#users.set(serverId, cache);
          return { ok: true, value: cache };
        });
      loading = { promise, pending };
      this.#loading.set(serverId, loading);
    }
    const r = await loading.promise;
    return r.ok ? { ok: true, value: r.value.json } : r;
  }

  /** One warning per answer (user maps are cached, so not one per join). */
  #skipped(what: string, skipped: string[]): void {
    const n = skipped.length;
    if (n === 0) return;
    this.#log.warn(
      `callback ${what}: skipped ${n} malformed entr${n === 1 ? "y" : "ies"}: ${
        skipped.slice(0, 3).join("; ")
      }${n > 3 ? `; and ${n - 3} more` : ""}`,
    );
  }

  /** Keep the cached user map of a server current with a presence event. */
  apply(e: PresenceEvent): void {
    this.#users.get(e.server)?.apply(e);
    this.#loading.get(e.server)?.pending.push(e);
  }

  /** Forget the cached user map of a server (its users changed without an event). */
  invalidate(serverId: string): void {
    this.#users.delete(serverId);
    this.forgetClientId(serverId);
  }

  /** Forget every cached user map, the server list and the client ids. */
  invalidateAll(): void {
    this.#users.clear();
    this.forgetServers();
    this.forgetClientId();
  }

  /**
   * The OAuth2 client id for a server, when known; an answer is reused for
   * `cacheMs` (dropped early by an `update-clientid` event, see
   * {@link forgetClientId}), so a join storm asks once, not once per join.
   */
  async clientId(serverId: string, conn?: string): Promise<Guarded<string | undefined>> {
    const source = this.#source;
    if (!source.getClientId) return { ok: true, value: undefined };
    const hit = this.#clientIds.get(serverId);
    if (hit && hit.expires > Date.now()) return { ok: true, value: hit.value };
    const generation = this.#clientIdsGeneration;
    const r = await this.#runner.run(
      "getClientId",
      () => source.getClientId!(serverId),
      clientIdResultSchema,
      conn,
    );
    // An answer that started before a change was signalled may predate it; "none" is not
    // kept (a source still starting answers so), only an id.
    if (
      r.ok && r.value !== undefined && this.#cacheMs > 0 &&
      generation === this.#clientIdsGeneration
    ) {
      this.#clientIds.set(serverId, { value: r.value, expires: Date.now() + this.#cacheMs });
    }
    return r;
  }

  /** Forget the cached client id of a server (or all): the next join asks afresh. */
  forgetClientId(serverId?: string): void {
    if (serverId === undefined) this.#clientIds.clear();
    else this.#clientIds.delete(serverId);
    this.#clientIdsGeneration++;
  }

  /**
   * Ask the source about a token; `undefined` when there is no way to
   * validate. A broken validator refuses: failing open would let anyone in.
   */
  async validate(
    token: string,
    user: DiscordUser,
    serverId: string,
    conn?: string,
  ): Promise<boolean | undefined> {
    const check = this.#source.validateDiscordUser;
    if (!check) return undefined;
    const r = await this.#runner.run(
      "validateDiscordUser",
      () => check(token, user, serverId),
      validationResultSchema,
      conn,
    );
    return r.ok ? r.value : false;
  }
}
