/**
 * The shared server list as one instance reads it: from Redis (the
 * publisher writes it), cached a second, else the last list read (Redis
 * unreachable or slow: a command timeout never keeps a viewer from the
 * list), else the inner source's own. Also what viewers saw of every
 * server, for a source taking over a session.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { type ServerMap, serverMapSchema, type UserMap } from "../protocol.ts";
import type { DataSource } from "../source.ts";
import { readSnapshot } from "./_copies.ts";
import type { Connections } from "./_redis.ts";
import { errorText as message } from "../_errors.ts";

/** One server as viewers last saw it (what a source resuming a session starts from). */
export interface ServerSnapshot {
  /** The server's Discord id. */
  id: string;
  /** Its name in the server list. */
  name: string;
  /** Its user map; absent when Redis holds no snapshot of it. */
  users?: UserMap;
}

/** What the list needs from the cluster around it. */
export interface ServerListContext {
  /** For warnings and debug lines. */
  log: Logger;
  /** The Redis connections (absent before open and after close). */
  conn(): Connections | undefined;
  /** Whether both connections are up. */
  up(): boolean;
  /** A namespaced key. */
  key(...parts: string[]): string;
  /** The inner source: its list stands in before any was read. */
  inner(): DataSource;
}

const CACHE_MS = 1000;

/** The server list of one instance. */
export class ServerList {
  #ctx: ServerListContext;
  #last: { value: ServerMap; at: number } | undefined;
  #inFlight: Promise<ServerMap> | undefined;

  constructor(ctx: ServerListContext) {
    this.#ctx = ctx;
  }

  /** The list: cached, else read once for every caller waiting. */
  get(): ServerMap | Promise<ServerMap> {
    const hit = this.#last;
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
    this.#inFlight ??= this.#load().finally(() => this.#inFlight = undefined);
    return this.#inFlight;
  }

  /** Read it again on the next `get` (a server was removed). */
  forget(): void {
    this.#last = undefined;
  }

  async #load(): Promise<ServerMap> {
    const c = this.#ctx.conn();
    if (this.#ctx.up() && c) {
      try {
        const raw = await c.cmd.get(this.#ctx.key("servers"));
        if (raw !== null) {
          const r = serverMapSchema.safeParse(JSON.parse(raw));
          if (r.success) {
            this.#last = { value: r.data, at: Date.now() };
            return r.data;
          }
          this.#ctx.log.warn("cluster: the server list in redis is invalid; ignoring it");
        }
      } catch (err) {
        this.#ctx.log.debug(`cluster: cannot read the server list: ${message(err)}`);
      }
    }
    if (this.#last) return this.#last.value;
    return await this.#ctx.inner().getServerData();
  }

  /**
   * What viewers saw: every server of the shared list with its snapshot
   * (without `users` when it has none). `undefined` when Redis is
   * unreachable or holds no server list.
   */
  async snapshots(): Promise<ServerSnapshot[] | undefined> {
    const c = this.#ctx.conn();
    if (!c || !this.#ctx.up()) return undefined;
    try {
      const raw = await c.cmd.get(this.#ctx.key("servers"));
      if (raw === null) return undefined;
      const servers = serverMapSchema.safeParse(JSON.parse(raw));
      if (!servers.success) return undefined;
      const out: ServerSnapshot[] = [];
      for (const [id, entry] of Object.entries(servers.data)) {
        const got = await readSnapshot(c, this.#ctx.key, id);
        const snap: ServerSnapshot = { id, name: entry.name };
        if (got && got !== "invalid") snap.users = Object.fromEntries(got.users);
        out.push(snap);
      }
      return out;
    } catch (err) {
      this.#ctx.log.warn(`cluster: cannot read the snapshots: ${message(err)}`);
      return undefined;
    }
  }
}
