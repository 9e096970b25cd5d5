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
import { z } from "zod";
import type { DataSource } from "./source.ts";
import {
  type DiscordUser,
  lenientServerMapSchema,
  normaliseServers,
  parseUserMap,
  type ServerInfo,
} from "./protocol.ts";
import type { Logger } from "./log.ts";
import { serverListFrame } from "./_frames.ts";
import type { PresenceEvent } from "./events.ts";
import { type SnapshotPolicy, UserMapCache } from "./_user_map.ts";

/** A refresh of a user map may take at most this share of the wall clock: its interval grows. */
const REFRESH_SHARE = 20;
/** Users validated and serialised per task: a big map never holds the event loop for long. */
const USERS_PER_TASK = 5000;

// Only the shape here: the entries are checked in parts (see #parts).
const objectOfEntries = z.custom<Record<string, unknown>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  "expected an object of entries keyed by id",
);

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

type Loading = {
  promise: Promise<Guarded<UserMapCache>>;
  pending: Array<{ e: PresenceEvent; frame: string }>;
};

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
  // Servers whose room has viewers (told by the hub): bounded by the server list.
  #viewed = new Set<string>();
  #policy: SnapshotPolicy;
  #hiding: boolean;

  /**
   * `cacheMs` is how long a user map may be reused before the source is
   * asked again (presence events keep it current meanwhile); `snapshot`
   * says how long a join snapshot of a map is reused (default 1 s, see
   * `UserMapCache`) and, with `hideOfflineAbove`, above how many users a
   * loaded map hides its offline members.
   */
  constructor(
    source: DataSource,
    runner: CallbackRunner,
    cacheMs: number,
    log: Logger,
    snapshot: Partial<SnapshotPolicy> = {},
  ) {
    this.#policy = { windowMs: 1000, now: () => performance.now(), ...snapshot };
    this.#hiding = (snapshot.hideOfflineAbove ?? 0) > 0;
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
    const hit = this.freshServers();
    if (hit) return Promise.resolve({ ok: true, value: hit });
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

  /** The cached answer of {@link servers} while it is fresh (no call to wait for), else `undefined`. */
  freshServers(): ServerList | undefined {
    const hit = this.#serverList;
    return hit && hit.expires > Date.now() ? hit : undefined;
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

  /**
   * The user map of one Discord server, kept current by presence events.
   * Once the source has answered, a join never waits for it again: past
   * `cacheMs` the cached map still serves while the source is asked in the
   * background, and a refresh that took long (a big map: fetched, validated,
   * fragmented) pushes the next one out to twenty times its duration, so
   * refreshes take at most 5 % of the time. Dropped maps ({@link invalidate})
   * are fetched afresh before the next join (one kept as its room's filter,
   * see {@link invalidate}, serves no join).
   */
  async userMap(serverId: string, conn?: string): Promise<Guarded<UserMapCache>> {
    const hit = this.cachedUserMap(serverId, conn);
    if (hit) return { ok: true, value: hit };
    return await (this.#loading.get(serverId)?.promise ?? this.#load(serverId, conn));
  }

  /**
   * The cached user map, as {@link userMap} would answer it, without a
   * promise (a join that finds everything cached is answered in its own
   * task, as a bare server would); `undefined` when it must be loaded.
   */
  cachedUserMap(serverId: string, conn?: string): UserMapCache | undefined {
    const hit = this.#users.get(serverId);
    if (!hit || hit.retired) return undefined;
    if (hit.expires <= Date.now() && !this.#loading.has(serverId)) {
      this.#load(serverId, conn).catch(() => {}); // its outcome is logged by the runner
    }
    return hit;
  }

  #load(serverId: string, conn?: string): Promise<Guarded<UserMapCache>> {
    const pending: Loading["pending"] = [];
    const started = performance.now();
    const promise = this.#runner
      .run("getUserData", () => this.#source.getUserData(serverId), objectOfEntries, conn)
      .then(async (r): Promise<Guarded<UserMapCache>> => {
        const cache = r.ok ? await this.#parts(serverId, r.value) : undefined;
        // A load dropped meanwhile (invalidate) answers its own waiters but is not kept.
        const current = this.#loading.get(serverId) === loading;
        if (current) this.#loading.delete(serverId);
        const stale = this.#users.get(serverId);
        if (!cache) {
          // Failures are not cached; a map that still serves is asked for again later.
          if (stale && current) stale.expires = Date.now() + Math.max(this.#cacheMs, 1000);
          return r as Guarded<never>;
        }
        // Events that arrived while the source was answering may be newer than its answer.
        for (const p of pending) cache.apply(p.e, p.frame);
        const above = this.#policy.hideOfflineAbove;
        if (above) {
          // Judged per load, with a margin: a guild hovering around the threshold does not
          // switch back and forth on every refresh (a switch leaves earlier viewers inexact).
          cache.hideOffline = cache.size > above ||
            (stale?.hideOffline === true && cache.size * 10 > above * 9);
        }
        const cost = performance.now() - started;
        cache.expires = this.#cacheMs > 0
          ? Date.now() + Math.max(this.#cacheMs, cost * REFRESH_SHARE)
          : 0;
        // Dropped while loading, it may have missed events: its joiners ask again.
        if (!current) cache.retire();
        else if (this.#cacheMs > 0) {
          stale?.retire(); // the copy in use, or one kept only as its room's filter
          this.#users.set(serverId, cache);
        }
        return { ok: true, value: cache };
      });
    const loading: Loading = { promise, pending };
    this.#loading.set(serverId, loading);
    return promise;
  }

  /**
   * Validate and serialise a source's answer in parts of {@link USERS_PER_TASK}
   * users, yielding to the event loop between them: 100,000 users take a few
   * hundred ms, which must not stall the joins and broadcasts of every viewer.
   */
  async #parts(serverId: string, raw: Record<string, unknown>): Promise<UserMapCache> {
    const entries = Object.entries(raw); // the source may change its object meanwhile
    const cache = new UserMapCache({}, this.#policy);
    const skipped: string[] = [];
    for (let i = 0; i < entries.length; i += USERS_PER_TASK) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      const part = parseUserMap(entriesObject(entries.slice(i, i + USERS_PER_TASK)));
      skipped.push(...part.skipped);
      cache.add(part.map);
    }
    this.#skipped(`getUserData(${serverId})`, skipped);
    return cache;
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

  /**
   * Keep the cached user map of a server current with a presence event
   * whose frame as given is `frame`; returns the frame its viewers are to
   * get (see `UserMapCache.apply`), or `undefined` for none.
   */
  apply(e: PresenceEvent, frame: string): string | undefined {
    this.#loading.get(e.server)?.pending.push({ e, frame });
    const cache = this.#users.get(e.server);
    return cache ? cache.apply(e, frame) : frame;
  }

  /**
   * Whether the `hideOfflineAbove` policy hides this user from the server's
   * viewers (an offline or unknown member of a map that hides offline
   * members): its chat messages are not sent, like the original bot's.
   */
  hides(serverId: string, uid: string): boolean {
    return this.#hiding && this.#users.get(serverId)?.shows(uid) === false;
  }

  /**
   * Forget the cached user map of a server (its users changed without an
   * event): the next join loads it afresh. With the `hideOfflineAbove`
   * policy, while the room has viewers the dropped map stays as their
   * filter (the last verdict and members, kept current by events, see
   * {@link apply} and {@link hides}) until that load replaces it or the last
   * viewer leaves: without it their frames would name hidden members.
   */
  invalidate(serverId: string): void {
    const cache = this.#users.get(serverId);
    if (cache) this.#drop(serverId, cache);
    // A load that started before the change may predate it: the next join asks afresh.
    this.#loading.delete(serverId);
    this.forgetClientId(serverId);
  }

  /** Forget every cached user map, the server list and the client ids. */
  invalidateAll(): void {
    for (const [serverId, cache] of this.#users) this.#drop(serverId, cache);
    this.#loading.clear();
    this.forgetServers();
    this.forgetClientId();
  }

  #drop(serverId: string, cache: UserMapCache): void {
    cache.retire();
    if (!this.#hiding || !this.#viewed.has(serverId)) this.#users.delete(serverId);
  }

  /**
   * Told when the room of a server gains its first viewer or loses its
   * last: a dropped map kept as the room's filter ({@link invalidate}) goes
   * with the last viewer, so no map is kept for a room nobody views.
   */
  watch(serverId: string, active: boolean): void {
    if (active) this.#viewed.add(serverId);
    else {
      this.#viewed.delete(serverId);
      if (this.#users.get(serverId)?.retired) this.#users.delete(serverId);
    }
  }

  /**
   * The OAuth2 client id for a server, when known; an answer is reused for
   * `cacheMs` (dropped early by an `update-clientid` event, see
   * {@link forgetClientId}), so a join storm asks once, not once per join.
   */
  async clientId(serverId: string, conn?: string): Promise<Guarded<string | undefined>> {
    const known = this.knownClientId(serverId);
    if (known !== false) return { ok: true, value: known };
    const source = this.#source;
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

  /**
   * The client id {@link clientId} would answer without asking the source
   * (cached, or the source has no `getClientId`), with no promise; `false`
   * when the source must be asked.
   */
  knownClientId(serverId: string): string | undefined | false {
    if (!this.#source.getClientId) return undefined;
    const hit = this.#clientIds.get(serverId);
    return hit && hit.expires > Date.now() ? hit.value : false;
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

/** Entries as an object whose every key (`__proto__` too) is a plain entry. */
function entriesObject(entries: Array<[string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return o;
}
