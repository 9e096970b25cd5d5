/**
 * The publisher's job: while this instance holds the lease it runs the inner
 * data source, writes the snapshots of the servers any instance watches,
 * keeps the shared server list current, and hands the source's events on
 * fenced by the lease token.
 *
 * One owner of the source's lifecycle: what the source was last told (its
 * term, its watched servers) is recorded only once the call has returned,
 * and one loop at a time compares it with what the lease and the interest
 * want, issuing one start, stop or watch after another until they agree.
 * Bursts of lease changes or interest updates therefore cannot leave the
 * source stopped while recorded as watching. A watchdog restarts a source
 * that stays silent for too long while it watches servers.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { ServerEvent } from "../events.ts";
import type { Logger } from "../log.ts";
import { serverMapSchema, type UserEntry, userMapSchema } from "../protocol.ts";
import type { DataSource, EventSink, SourceContext } from "../source.ts";
import type { Connections } from "./_redis.ts";
import { diffUsers } from "./_room.ts";
import { errorText as message } from "../_errors.ts";

/** What the publisher needs from the cluster around it. */
export interface PublisherContext {
  /** For role changes and failures. */
  log: Logger;
  /** The Redis connections (absent before open and after close). */
  conn(): Connections | undefined;
  /** A namespaced key or channel name. */
  key(...parts: string[]): string;
  /** The current lease token, or `""`. */
  token(): string;
  /** Whether `token` still holds the lease by this instance's clock. */
  valid(token: string): boolean;
  /** End the term (fenced by Redis, or the source failed). */
  stepDown(why: string): void;
  /** The server's sink; it publishes what the source emits with origin "source" (fenced). */
  sink(): EventSink | undefined;
  /** What the server handed the cluster at start (its logger), passed on to the inner source. */
  context(): SourceContext | undefined;
  /** An event was refused locally because the lease is no longer held. */
  fenced(): void;
  /** Publish a source event fenced by `token` (the takeover's corrections). */
  emit(event: ServerEvent, token: string): void;
  /** Entries kept in each server's stream. */
  streamLength: number;
  /** Restart a source silent this long while watching servers, ms (0: never). */
  watchdogMs: number;
}

/** The inner source and its lifecycle. */
export class Publisher {
  #ctx: PublisherContext;
  #inner: DataSource;
  #factory: (() => DataSource) | undefined;
  /** Whether #inner has been started once (a factory then makes a fresh one). */
  #innerUsed = false;
  /** What the source was last told: the term it runs for ("" stopped) and its watched servers. */
  #told = { token: "", rooms: new Set<string>() };
  /** Servers any instance watches (from the last renewal). */
  #want = new Set<string>();
  /** Watched servers the source knows (the watchdog expects activity there). */
  #live = new Set<string>();
  #loop: Promise<void> | undefined;
  #again = false;
  #restart = false;
  #lastEmit = 0;
  #serversWritten = "";
  #seeding = new Map<string, Promise<void>>();
  /** Servers whose snapshot the term `#writtenBy` has written or corrected. */
  #written = new Set<string>();
  #writtenBy = "";
  /** Times the watchdog restarted a silent source. */
  restarts = 0;

  constructor(ctx: PublisherContext, inner: DataSource | (() => DataSource)) {
    this.#ctx = ctx;
    if (typeof inner === "function") {
      this.#factory = () => {
        const made = inner();
        if (typeof made?.getServerData !== "function" || typeof made.getUserData !== "function") {
          throw new TypeError("redisCluster: the source function did not return a DataSource");
        }
        return made;
      };
      this.#inner = this.#factory();
    } else {
      this.#inner = inner;
    }
  }

  /** The inner source (its user maps stand in while Redis has none). */
  get inner(): DataSource {
    return this.#inner;
  }

  /** What the source was last told: the term and how many servers it watches. */
  get told(): { token: string; rooms: number } {
    return { token: this.#told.token, rooms: this.#told.rooms.size };
  }

  /** The lease changed: bring the source in line. Resolves when it is. */
  changed(): Promise<void> {
    return this.#reconcile();
  }

  /** A renewal: follow the interest, and now and then republish the server list. */
  renewed(token: string, union: Set<string>, beats: number): void {
    this.#want = union;
    if (beats > 0 && beats % 10 === 0 && this.#told.token === token && !this.#loop) {
      // Sources learn servers over time (a guild arriving): keep the shared list current.
      this.writeServers(token, true).catch((err) =>
        this.#ctx.log.warn(`cluster: cannot write the server list: ${message(err)}`)
      );
    }
    void this.#reconcile();
  }

  /** The lease's clock: the watchdog looks at the source's activity. */
  tick(): void {
    const { watchdogMs } = this.#ctx;
    if (watchdogMs <= 0 || this.#loop || !this.#told.token || this.#live.size === 0) return;
    if (this.#told.token !== this.#ctx.token()) return;
    const silent = performance.now() - this.#lastEmit;
    if (silent < watchdogMs) return;
    this.restarts++;
    this.#ctx.log.warn(
      `cluster: the data source sent nothing for ${Math.round(silent)} ms while watching ` +
        `${this.#live.size} server(s); restarting it`,
    );
    this.#restart = true;
    void this.#reconcile();
  }

  /** Resolves when the source agrees with the lease and the interest. */
  idle(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /**
   * Publish the inner source's server list (fenced: only while `token` holds
   * the lease). With `keepNonEmpty`, an empty list does not replace one: a
   * source that resumed a session may not know its servers yet.
   */
  async writeServers(token: string, keepNonEmpty = false): Promise<void> {
    const servers = serverMapSchema.parse(await this.#inner.getServerData());
    const json = JSON.stringify(servers);
    if (json === this.#serversWritten) return;
    if (keepNonEmpty && Object.keys(servers).length === 0) return;
    this.#serversWritten = json;
    await this.#ctx.conn()?.scripts.fencedSet(
      this.#ctx.key("leader"),
      this.#ctx.key("servers"),
      token,
      json,
      0,
    );
  }

  /**
   * Write a server's snapshot from the inner source when none exists. With
   * `correct` (a new term), an existing snapshot is brought to the source's
   * state by publishing the differences as events, so every instance's copy
   * and viewers converge through the one numbered stream.
   */
  seed(serverId: string, correct = false): Promise<void> {
    const running = this.#seeding.get(serverId);
    if (running && !correct) return running;
    const token = this.#ctx.token();
    const p = (async () => {
      await running;
      if (!token || !this.#ctx.conn()) return;
      try {
        // A late request (a join racing a removal) must not bring a gone server back.
        if (!(serverId in await this.#inner.getServerData())) return;
        this.#live.add(serverId);
        const users = userMapSchema.parse(await this.#inner.getUserData(serverId));
        const pairs: string[] = [];
        for (const [uid, u] of Object.entries(users)) pairs.push(uid, JSON.stringify(u));
        const r = await this.writeSnapshot(serverId, token, pairs);
        if (this.#writtenBy !== token) {
          this.#writtenBy = token;
          this.#written.clear();
        }
        if (r === -1) this.#ctx.stepDown("fenced by redis while writing a snapshot");
        else if (r > 0) {
          this.#written.add(serverId);
          this.#ctx.log.debug(`cluster: wrote the snapshot of ${serverId} (seq ${r})`);
        } else if (correct && !this.#written.has(serverId)) {
          this.#written.add(serverId);
          await this.#correct(serverId, token, users);
        }
      } catch (err) {
        this.#ctx.log.warn(`cluster: cannot write the snapshot of ${serverId}: ${message(err)}`);
      }
    })().finally(() => {
      if (this.#seeding.get(serverId) === p) this.#seeding.delete(serverId);
    });
    this.#seeding.set(serverId, p);
    return p;
  }

  /** Publish what differs between the snapshot in Redis and the source's `truth`. */
  async #correct(serverId: string, token: string, truth: Record<string, UserEntry>): Promise<void> {
    const c = this.#ctx.conn();
    if (!c) return;
    const k = this.#ctx.key;
    const [seq, flat] = await c.scripts.load(
      k("seq", serverId),
      k("users", serverId),
      k("snap", serverId),
    );
    if (seq === null) return;
    const before = new Map<string, UserEntry>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      try {
        before.set(flat[i], JSON.parse(flat[i + 1]));
      } catch { /* replaced below */ }
    }
    // Users a library broadcast wrote last are the application's word, not the source's.
    const library = new Set(await c.cmd.smembers(k("lib", serverId)));
    const diff = diffUsers(serverId, before, new Map(Object.entries(truth)))
      .filter((e) => !library.has(e.uid));
    if (diff.length > 0) {
      this.#ctx.log.info(
        `cluster: ${diff.length} correction(s) to the snapshot of ${serverId} from the new term's source`,
      );
    }
    for (const event of diff) this.#ctx.emit({ type: "presence", event }, token);
  }

  /** Write a snapshot; `token` "" restores one (only in "missing" mode). */
  writeSnapshot(
    serverId: string,
    token: string,
    pairs: string[],
    mode: "missing" | "replace" = "missing",
  ): Promise<number> {
    const k = this.#ctx.key;
    return this.#ctx.conn()!.scripts.seed(
      k("leader"),
      k("epoch"),
      k("seq", serverId),
      k("users", serverId),
      k("snap", serverId),
      k("xs", serverId),
      token,
      k("ev", serverId),
      mode,
      this.#ctx.streamLength,
      ...pairs,
    );
  }

  #reconcile(): Promise<void> {
    if (this.#loop) {
      this.#again = true;
      return this.#loop;
    }
    this.#loop = (async () => {
      do {
        this.#again = false;
        await this.#converge();
      } while (this.#again);
    })().catch((err) => {
      this.#ctx.log.error(`cluster: the data source failed: ${message(err)}`);
    }).finally(() => this.#loop = undefined);
    return this.#loop;
  }

  /** One call to the source at a time until it runs for the current term and watches what is wanted. */
  async #converge(): Promise<void> {
    const told = this.#told;
    for (;;) {
      const term = this.#ctx.token();
      if (told.token && (told.token !== term || this.#restart)) {
        this.#restart = false;
        for (const id of [...told.rooms]) {
          told.rooms.delete(id);
          this.#call("unwatch", () => this.#inner.watch?.(id, false));
        }
        this.#live.clear();
        try {
          await this.#inner.stop?.();
        } catch (err) {
          this.#ctx.log.error(`cluster: the data source failed to stop: ${message(err)}`);
        }
        told.token = "";
        continue;
      }
      if (!told.token && term) {
        if (this.#factory && this.#innerUsed) this.#inner = this.#factory();
        this.#innerUsed = true;
        // Recorded before the call: a start that fails half-way is followed by a stop.
        told.token = term;
        this.#serversWritten = "";
        this.#lastEmit = performance.now();
        try {
          // Started first: a gateway source knows its servers only once connected.
          await this.#inner.start?.(this.#guardedSink(term), this.#ctx.context());
          await this.writeServers(term, true);
        } catch (err) {
          this.#ctx.log.error(`cluster: the data source failed to start: ${message(err)}`);
          this.#ctx.stepDown("data source failed");
        }
        continue;
      }
      if (!told.token) return;
      const add = [...this.#want].find((id) => !told.rooms.has(id));
      if (add !== undefined) {
        // A new term's snapshots are its source's truth: written over what an earlier one left.
        await this.seed(add, true);
        if (this.#ctx.token() !== told.token) continue;
        this.#call("watch", () => this.#inner.watch?.(add, true));
        told.rooms.add(add);
        continue;
      }
      const drop = [...told.rooms].find((id) => !this.#want.has(id));
      if (drop !== undefined) {
        this.#call("unwatch", () => this.#inner.watch?.(drop, false));
        told.rooms.delete(drop);
        this.#live.delete(drop);
        continue;
      }
      return;
    }
  }

  #call(what: string, op: () => void): void {
    try {
      op();
    } catch (err) {
      this.#ctx.log.error(`cluster: the data source failed to ${what}: ${message(err)}`);
    }
  }

  #guardedSink(token: string): EventSink {
    return {
      emit: (e) => {
        const sink = this.#ctx.sink();
        if (this.#told.token !== token || !this.#ctx.valid(token) || !sink) {
          this.#ctx.fenced();
          return;
        }
        this.#lastEmit = performance.now();
        // The server's sink checks the event and publishes it with origin "source".
        sink.emit(e);
      },
    };
  }
}
