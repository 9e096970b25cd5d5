/**
 * This instance's local copies of user maps in a cluster: one per server it
 * has viewers of (or is answering a join for), each loaded from the Redis
 * snapshot after subscribing to the server's channel, then kept current by
 * the numbered events on that channel. After a gap or a reconnect, the
 * events missed are read from the server's stream and delivered late, in
 * order; only when the stream no longer reaches back that far (or the
 * snapshot was replaced) is the copy reloaded from the snapshot, viewers get
 * what changed as presence frames, and the events skipped are counted lost.
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
import { readAfter } from "./_stream.ts";
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
  /** The newest lease epoch this instance knows. */
  newestEpoch(): number;
  /** A source event of `epoch` was applied. */
  sawEpoch(epoch: number): void;
  /** A source event older than its copy's epoch was dropped. */
  staleEpoch(): void;
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
  /** Newest epoch of this server's stream (events of an older one are stale). */
  epoch: number;
  /** The snapshot was replaced: the next load reads it rather than the stream. */
  replaced: boolean;
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
  #measured = 0;
  /** Redis's clock (ms) of the newest event applied. */
  #newestT = 0;
  /** Copies loaded from a snapshot so far. */
  resyncs = 0;
  /** Copies brought up to date from their stream (events delivered late, none lost). */
  caughtUp = 0;
  /** Events skipped by a snapshot reload because the stream no longer held them. */
  lost = 0;

  constructor(ctx: CopiesContext) {
    this.#ctx = ctx;
  }

  /**
   * How far behind this instance is, in seconds: the delay of the last event
   * applied while in step; while `behind` (Redis unreachable) or catching
   * up, the age of the newest event applied, which grows with the outage.
   */
  lag(behind: boolean): number {
    const catching = behind || [...this.#copies.values()].some((c) => c.loading && c.watched);
    if (!catching || this.#newestT === 0) return this.#measured;
    return Math.max(this.#measured, (Date.now() - this.#newestT) / 1000);
  }

  /** How many servers this instance keeps a copy of. */
  get size(): number {
    return this.#copies.size;
  }

  /** Servers with viewers here, or a join waiting for a snapshot the publisher must write. */
  watched(): string[] {
    return [...this.#copies].filter(([, c]) => c.watched || (c.loading && !c.synced))
      .map(([id]) => id);
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
    // A copy with data answers at once, even while it reloads (a join during an
    // outage is served from it); the viewer then gets what the reload changes.
    while (copy.loading && !copy.synced && copy.users.size === 0) await copy.loading;
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

  /**
   * Apply one envelope in sequence. `fromStream`: read back from the stream,
   * where Redis's order is the truth (the publish script fenced each one).
   */
  #apply(serverId: string, copy: Copy, env: Envelope, fromStream = false): void {
    // A snapshot marker only asks for a reload, which is always safe: it is
    // not held to the epoch (a copy restored after a Redis restart carries 0).
    if (env.k === "src") {
      if (env.e < copy.epoch && !fromStream) {
        this.#ctx.staleEpoch();
        return;
      }
      if (env.e > copy.epoch) copy.epoch = env.e;
      this.#ctx.sawEpoch(env.e);
    }
    if (env.k === "snap") {
      if (env.s > copy.seq) {
        copy.replaced = true;
        this.#resync(serverId, true);
      }
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
    if (env.t !== undefined) {
      this.#measured = Math.max(0, (Date.now() - env.t) / 1000);
      if (env.t > this.#newestT) this.#newestT = env.t;
    }
    if (copy.watched) this.#ctx.deliver(ev);
  }

  #copy(serverId: string): Copy {
    let copy = this.#copies.get(serverId);
    if (copy) return copy;
    copy = {
      users: new Map(),
      seq: 0,
      epoch: 0,
      replaced: false,
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

  /**
   * Read what a synced copy missed from the server's stream and apply it in
   * order. False when the stream cannot fill the gap (trimmed past it, a
   * replaced snapshot in it, or Redis lost its data): the snapshot must.
   */
  async #catchUp(c: Connections, serverId: string, copy: Copy): Promise<boolean> {
    const raw = await c.cmd.get(this.#ctx.key("seq", serverId));
    const seq = Number(raw);
    if (raw === null || seq < copy.seq) return false; // Redis restarted empty
    const missed = await readAfter(c, this.#ctx.key("xs", serverId), copy.seq);
    if (!missed.ok) {
      this.lost += Math.max(0, missed.from - copy.seq - 1);
      this.#ctx.log.warn(
        `cluster: events ${copy.seq + 1}-${missed.from - 1} of ${serverId} are no longer in ` +
          `its stream; reloading the snapshot`,
      );
      return false;
    }
    const envs: Envelope[] = [];
    for (const raw of missed.envelopes) {
      const parsed = parseEnvelope(raw);
      if (!parsed.ok) continue;
      if (parsed.value.k === "snap") return false;
      envs.push(parsed.value);
    }
    if (envs.length > 0) this.caughtUp++;
    for (const env of envs) {
      if (env.s !== copy.seq + 1) {
        if (env.s <= copy.seq) continue;
        return false;
      }
      this.#apply(serverId, copy, env, true);
    }
    // Numbered without reaching the stream (written by an older version): the snapshot has it.
    return copy.seq >= seq;
  }

  /** Subscribe, then catch up from the stream or read the snapshot: events after are buffered, none is lost between. */
  async #load(serverId: string, copy: Copy, announce: boolean): Promise<void> {
    copy.buffer ??= [];
    const c = this.#ctx.conn();
    let got: { seq: number; users: Map<string, UserEntry> } | undefined;
    if (c && this.#ctx.up()) {
      try {
        await c.sub.subscribe(this.#ctx.key("ev", serverId));
        const replaced = copy.replaced;
        copy.replaced = false;
        if (copy.synced && !replaced && await this.#catchUp(c, serverId, copy)) return;
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
    // Published after this snapshot was read, an event of an older epoch can only be a stale one.
    copy.epoch = Math.max(copy.epoch, this.#ctx.newestEpoch());
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
    const got = await readSnapshot(c, this.#ctx.key, serverId);
    if (got === "invalid") {
      this.#ctx.log.warn(`cluster: the snapshot of ${serverId} is invalid; keeping the local copy`);
      return undefined;
    }
    return got;
  }
}

/** Read a server's snapshot and its sequence number in one step; `undefined` when none. */
export async function readSnapshot(
  c: Connections,
  key: (...parts: string[]) => string,
  serverId: string,
): Promise<{ seq: number; users: Map<string, UserEntry> } | undefined | "invalid"> {
  const [seq, flat] = await c.scripts.load(
    key("seq", serverId),
    key("users", serverId),
    key("snap", serverId),
  );
  if (seq === null) return undefined;
  const users: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    try {
      users[flat[i]] = JSON.parse(flat[i + 1]);
    } catch { /* skipped; the next snapshot rewrites it */ }
  }
  const checked = userMapSchema.safeParse(users);
  if (!checked.success) return "invalid";
  return { seq: Number(seq), users: new Map(Object.entries(checked.data)) };
}
