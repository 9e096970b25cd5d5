/**
 * The server's view of its data: the server list and each server's user map,
 * from the callbacks when registered and from mock mode otherwise. Results
 * are validated once and the serialised user map is shared: concurrent joins
 * wait on one callback call, and a join storm costs one serialisation per
 * change of the map, not one per joiner.
 *
 * @module
 */
import {
  type CallbackRunner,
  type Callbacks,
  clientIdResultSchema,
  type Guarded,
  validationResultSchema,
} from "./callbacks.ts";
import type { MockDataProvider } from "./mock.ts";
import {
  type DiscordUser,
  normaliseServers,
  serialiseUsers,
  type ServerInfo,
  serverMapSchema,
  userMapSchema,
} from "./protocol.ts";

interface UserCacheEntry {
  json: Promise<Guarded<string>>;
  expires: number;
}

/** Reads server and user data through the callbacks (or the mock world). */
export class Directory {
  #callbacks: Callbacks;
  #mock: MockDataProvider;
  #runner: CallbackRunner;
  #cacheMs: number;
  #servers: Promise<Guarded<ServerInfo[]>> | undefined;
  #users = new Map<string, UserCacheEntry>();

  /**
   * `callbacks` is read at each call, so hooks registered later take effect.
   * `cacheMs` is how long a serialised user map may be reused when no
   * presence change for that server was broadcast in between.
   */
  constructor(
    callbacks: Callbacks,
    mock: MockDataProvider,
    runner: CallbackRunner,
    cacheMs: number,
  ) {
    this.#callbacks = callbacks;
    this.#mock = mock;
    this.#runner = runner;
    this.#cacheMs = cacheMs;
  }

  /** Whether the server list is the mock one. */
  get mockServers(): boolean {
    return !this.#callbacks.getServerData;
  }

  /** Whether user data for `serverId` comes from the mock world. */
  mockUsers(serverId: string): boolean {
    return !this.#callbacks.getUserData && this.#mock.has(serverId);
  }

  /** The enabled servers, normalised. Concurrent callers share one call. */
  servers(conn?: string): Promise<Guarded<ServerInfo[]>> {
    if (this.#servers) return this.#servers;
    const hook = this.#callbacks.getServerData;
    const p = hook
      ? this.#runner.run("getServerData", () => hook(), serverMapSchema, conn)
      : Promise.resolve({ ok: true as const, value: this.#mock.getServerData() });
    this.#servers = p.then((r) => r.ok ? { ok: true, value: normaliseServers(r.value) } : r);
    // Shared only while in flight: the next caller asks afresh.
    this.#servers.finally(() => this.#servers = undefined);
    return this.#servers;
  }

  /** The serialised user map of one Discord server. */
  usersJson(serverId: string, conn?: string): Promise<Guarded<string>> {
    const now = Date.now();
    const hit = this.#users.get(serverId);
    if (hit && hit.expires > now) return hit.json;
    const hook = this.#callbacks.getUserData;
    const json =
      (hook
        ? this.#runner.run("getUserData", () => hook(serverId), userMapSchema, conn)
        : Promise.resolve({ ok: true as const, value: this.#mock.getUserData(serverId) }))
        .then((r): Guarded<string> => r.ok ? { ok: true, value: serialiseUsers(r.value) } : r);
    const entry = { json, expires: Number.POSITIVE_INFINITY };
    this.#users.set(serverId, entry);
    json.then((r) => {
      if (this.#users.get(serverId) !== entry) return;
      // Failures are not cached; successes live for cacheMs after they arrive.
      if (!r.ok || this.#cacheMs <= 0) this.#users.delete(serverId);
      else entry.expires = Date.now() + this.#cacheMs;
    });
    return json;
  }

  /** Forget the cached user map of a server (its users changed). */
  invalidate(serverId: string): void {
    this.#users.delete(serverId);
  }

  /** Forget every cached user map. */
  invalidateAll(): void {
    this.#users.clear();
  }

  /** The OAuth2 client id for a server, when known. */
  async clientId(serverId: string, conn?: string): Promise<Guarded<string | undefined>> {
    const hook = this.#callbacks.getClientId;
    if (!hook) return { ok: true, value: undefined };
    return await this.#runner.run("getClientId", () => hook(serverId), clientIdResultSchema, conn);
  }

  /**
   * Ask the validation hook about a token; `undefined` when there is no way
   * to validate (no hook, and not the mock world's demo server).
   */
  async validate(
    token: string,
    user: DiscordUser,
    serverId: string,
    conn?: string,
  ): Promise<boolean | undefined> {
    const hook = this.#callbacks.validateDiscordUser;
    if (hook) {
      const r = await this.#runner.run(
        "validateDiscordUser",
        () => hook(token, user, serverId),
        validationResultSchema,
        conn,
      );
      // A broken validator refuses: failing open would let anyone in.
      return r.ok ? r.value : false;
    }
    if (this.mockServers && this.#mock.has(serverId)) {
      return this.#mock.validateDiscordUser(token, user, serverId);
    }
    return undefined;
  }
}
