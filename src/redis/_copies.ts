/**
 * This instance's local copies of user maps in a cluster: one per server it
 * has viewers of (or is answering a join for), each loaded from the Redis
 * snapshot after subscribing to the server's channel, then kept current by
 * the numbered events on that channel. A gap, a replaced snapshot or a
 * reconnect reloads the copy, and viewers get what changed as presence
 * frames.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { ServerEvent } from "../events.ts";
import type { Logger } from "../log.ts";
import { type UserEntry, type UserMap, userMapSchema } from "../protocol.ts";
import type { DataSource } from "../source.ts";
import type { Connections } from "./_redis.ts";
import { applyPresence, diffUsers, type Envelope, parseEnvelope } from "./_room.ts";
import { errorText as message } from "../_errors.ts";

/** What the copies need from the cluster around them. */
export interface CopiesContext {
  /** For warnings and debug lines. */
  log: Logger;
  /** The Redis connections (absent before open and after close). */
  conn(): Connections | undefined;
  /** Whether both connections are up. */
  up(): boolean;
  /** A namespaced key or channel name. */
  key(...parts: string[]): string;
  /** The inner source: its user map stands in while Redis has none. */
  inner(): DataSource;
  /** Hand an event to this instance's viewers. */
  deliver(event: ServerEvent): void;
  /** Whether a source event of `epoch` is current (false: older than the newest seen; dropped). */
  currentEpoch(epoch: number): boolean;
  /** Write a snapshot from a copy when Redis has none (it restarted empty). */
  restore(serverId: string, pairs: string[]): Promise<number>;
  /** A server was reported gone. */
  serverGone(serverId: string): void;
  /** How long a join waits for the leader to write a missing snapshot, ms. */
  snapshotWaitMs: number;
}

interface Copy {
  users: Map<string, UserEntry>;
  seq: number;
  /** Loaded from a Redis snapshot (not a stand-in). */
  synced: boolean;
  /** Envelopes that arrived while a snapshot was loading. */
  buffer: Envelope[] | null;
  watched: boolean;
  loading: Promise<void> | undefined;
  again: boolean;
  announce: boolean;
  provisional: ReturnType<typeof setTimeout> | undefined;
}

/** How long a copy made for a join is kept when the viewer does not stay. */
const PROVISIONAL_MS = 15_000;

/** The local copies of one instance. */
export class Copies {
  #ctx: CopiesContext;
  #copies = new Map<string, Copy>();
  /** Seconds between Redis publishing the last applied event and applying it here. */
  lag = 0;
  /** Copies loaded from a snapshot so far. */
  resyncs = 0;

  constructor(ctx: CopiesContext) {
    this.#ctx = ctx;
  }

  /** How many servers this instance keeps a copy of. */
  get size(): number {
    return this.#copies.size;
  }

  /** Servers with viewers here. */
  watched(): string[] {
    return [...this.#copies].filter(([, c]) => c.watched).map(([id]) => id);
  }

  /** Viewers of `serverId` came or all left: keep the copy (and subscription) only while watched. */
  watch(serverId: string, active: boolean): void {
    if (active) {
      const copy = this.#copy(serverId);
      copy.watched = true;
      if (copy.provisional) clearTimeout(copy.provisional);
      copy.provisional = undefined;
      return;
    }
    const copy = this.#copies.get(serverId);
    if (!copy) return;
    copy.watched = false;
    this.#drop(serverId);
  }

  /** The user map of `serverId`, loading the snapshot on first use. */
  async users(serverId: string): Promise<UserMap> {
    const copy = this.#copy(serverId);
    if (!copy.watched && !copy.provisional) {
      // Asked before the viewer is in the room (a join): keep the copy a while.
      copy.provisional = setTimeout(() => {
        copy.provisional = undefined;
        if (!copy.watched) this.#drop(serverId);
      }, PROVISIONAL_MS);
    }
    while (copy.loading) await copy.loading;
    return Object.fromEntries(copy.users);
  }

  /** A message on `ns:ev:<serverId>`. */
  onMessage(serverId: string, raw: string): void {
    const copy = this.#copies.get(serverId);
    if (!copy) return;
    const parsed = parseEnvelope(raw);
    if (!parsed.ok) {
      this.#ctx.log.warn(`cluster: bad message for ${serverId}: ${parsed.reason}`);
      return;
    }
    if (copy.buffer) copy.buffer.push(parsed.value);
    else this.#apply(serverId, copy, parsed.value);
  }

  /** Reload every copy (after a reconnect); resolves when all are loaded. */
  reloadAll(): Promise<void> {
    const loads: Promise<void>[] = [];
    for (const [id, copy] of this.#copies) {
      this.#resync(id, true);
      if (copy.loading) loads.push(copy.loading);
    }
    return Promise.all(loads).then(() => {});
  }

  /** Forget every copy. */
  clear(): void {
    for (const [, copy] of this.#copies) if (copy.provisional) clearTimeout(copy.provisional);
    this.#copies.clear();
  }

  #apply(serverId: string, copy: Copy, env: Envelope): void {
    if ((env.k === "src" || env.k === "snap") && !this.#ctx.currentEpoch(env.e)) return;
    if (env.k === "snap") {
      if (env.s > copy.seq) this.#resync(serverId, true);
      return;
    }
    if (env.s <= copy.seq) return; // already in the snapshot, or a repeat
    if (env.s !== copy.seq + 1 || !copy.synced) {
      this.#resync(serverId, true); // missed something: the snapshot has it
      return;
    }
    copy.seq = env.s;
    const ev = env.ev!;
    if (ev.type === "presence") applyPresence(copy.users, ev.event);
    if (ev.type === "server-gone") this.#ctx.serverGone(serverId);
    if (env.t !== undefined) this.lag = Math.max(0, (Date.now() - env.t) / 1000);
    if (copy.watched) this.#ctx.deliver(ev);
  }

  #copy(serverId: string): Copy {
    let copy = this.#copies.get(serverId);
    if (copy) return copy;
    copy = {
      users: new Map(),
      seq: 0,
      synced: false,
      buffer: null,
      watched: false,
      loading: undefined,
      again: false,
      announce: false,
      provisional: undefined,
    };
    this.#copies.set(serverId, copy);
    this.#resync(serverId, false);
    return copy;
  }

  #drop(serverId: string): void {
    const copy = this.#copies.get(serverId);
    if (!copy || copy.watched) return;
    if (copy.provisional) clearTimeout(copy.provisional);
    this.#copies.delete(serverId);
    this.#ctx.conn()?.sub.unsubscribe(this.#ctx.key("ev", serverId)).catch(() => {});
  }

  #resync(serverId: string, announce: boolean): void {
    const copy = this.#copies.get(serverId);
    if (!copy) return;
    if (copy.loading) {
      copy.again = true;
      copy.announce ||= announce;
      return;
    }
    copy.announce = announce;
    copy.loading = (async () => {
      do {
        copy.again = false;
        await this.#load(serverId, copy, copy.announce);
      } while (copy.again && this.#copies.get(serverId) === copy);
    })().finally(() => {
      copy.loading = undefined;
      const buffered = copy.buffer ?? [];
      copy.buffer = null;
      buffered.sort((a, b) => a.s - b.s);
      for (const env of buffered) this.#apply(serverId, copy, env);
    });
  }

  /** Subscribe, then read the snapshot: events after it are buffered, none is lost between. */
  async #load(serverId: string, copy: Copy, announce: boolean): Promise<void> {
    copy.buffer ??= [];
    const c = this.#ctx.conn();
    let got: { seq: number; users: Map<string, UserEntry> } | undefined;
    if (c && this.#ctx.up()) {
      try {
        await c.sub.subscribe(this.#ctx.key("ev", serverId));
        got = await this.#read(c, serverId);
        if (!got && copy.synced) {
          // Redis lost its data (restarted empty): our copy is the newest there is.
          const pairs: string[] = [];
          for (const [uid, u] of copy.users) pairs.push(uid, JSON.stringify(u));
          await this.#ctx.restore(serverId, pairs);
          got = await this.#read(c, serverId);
        }
        if (!got) {
          // No snapshot yet: ask the leader for one and wait a little.
          await c.cmd.publish(this.#ctx.key("ctl"), JSON.stringify({ need: serverId }));
          const deadline = performance.now() + this.#ctx.snapshotWaitMs;
          while (!got && performance.now() < deadline && this.#copies.get(serverId) === copy) {
            await new Promise((r) => setTimeout(r, 50));
            got = await this.#read(c, serverId);
          }
        }
      } catch (err) {
        this.#ctx.log.debug(`cluster: cannot load ${serverId}: ${message(err)}`);
      }
    }
    if (!got) {
      if (copy.users.size === 0 && !copy.synced) {
        // Nothing known yet and nothing in redis: the inner source's view.
        try {
          const users = userMapSchema.parse(await this.#ctx.inner().getUserData(serverId));
          copy.users = new Map(Object.entries(users));
        } catch (err) {
          this.#ctx.log.warn(`cluster: no user data for ${serverId}: ${message(err)}`);
        }
      }
      return;
    }
    this.resyncs++;
    // A seq below ours means redis restarted empty; the snapshot is the truth either way.
    const before = copy.users;
    copy.users = got.users;
    copy.seq = got.seq;
    const hadCopy = copy.synced || before.size > 0;
    copy.synced = true;
    if (announce && hadCopy && copy.watched) {
      for (const e of diffUsers(serverId, before, got.users)) {
        this.#ctx.deliver({ type: "presence", event: e });
      }
    }
  }

  async #read(
    c: Connections,
    serverId: string,
  ): Promise<{ seq: number; users: Map<string, UserEntry> } | undefined> {
    const [seq, flat] = await c.scripts.load(
      this.#ctx.key("seq", serverId),
      this.#ctx.key("users", serverId),
      this.#ctx.key("snap", serverId),
    );
    if (seq === null) return undefined;
    const users: Record<string, unknown> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
      try {
        users[flat[i]] = JSON.parse(flat[i + 1]);
      } catch { /* skipped; the next snapshot rewrites it */ }
    }
    const checked = userMapSchema.safeParse(users);
    if (!checked.success) {
      this.#ctx.log.warn(`cluster: the snapshot of ${serverId} is invalid; keeping the local copy`);
      return undefined;
    }
    return { seq: Number(seq), users: new Map(Object.entries(checked.data)) };
  }
}
