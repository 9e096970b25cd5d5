/**
 * The publisher's job: while this instance holds the lease it runs the inner
 * data source, seeds the snapshots of the servers any instance watches,
 * keeps the shared server list current, and hands the source's events on
 * fenced by the lease token. Every start, stop and watch of the source runs
 * in one chain, in order.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { serverMapSchema, userMapSchema } from "../protocol.ts";
import type { DataSource, EventSink } from "../source.ts";
import type { Connections } from "./_redis.ts";
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
  stepDown(why: string): Promise<void>;
  /** The server's sink; it publishes what the source emits with origin "source" (fenced). */
  sink(): EventSink | undefined;
  /** An event was refused locally because the lease is no longer held. */
  fenced(): void;
}

/** The inner source and its lifecycle. */
export class Publisher {
  #ctx: PublisherContext;
  #inner: DataSource;
  #factory: (() => DataSource) | undefined;
  /** Whether #inner has been started once (a factory then makes a fresh one). */
  #innerUsed = false;
  #ops: Promise<void> = Promise.resolve();
  #watched = new Set<string>();
  #wantInterest = new Set<string>();
  #interestQueued = false;
  #serversWritten = "";
  #seeding = new Map<string, Promise<void>>();

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

  /** Resolves when every queued start/stop/watch has run. */
  idle(): Promise<void> {
    return this.#ops;
  }

  /** A term began: start the source (not awaited by the lease: a gateway may take long). */
  elected(token: string): void {
    this.#serversWritten = "";
    const sink = this.#guardedSink(token);
    this.#chain(async () => {
      if (this.#ctx.token() !== token) return;
      try {
        if (this.#factory && this.#innerUsed) this.#inner = this.#factory();
        this.#innerUsed = true;
        // Started first: a gateway source knows its servers only once connected.
        await this.#inner.start?.(sink);
        await this.writeServers(token, true);
      } catch (err) {
        this.#ctx.log.error(`cluster: the data source failed to start: ${message(err)}`);
        // Not awaited: this runs inside the chain the stop is appended to.
        void this.#ctx.stepDown("data source failed");
      }
    });
  }

  /** A renewal: follow the interest, and now and then republish the server list. */
  renewed(token: string, union: Set<string>, beats: number): void {
    if (beats > 0 && beats % 10 === 0) {
      // Sources learn servers over time (a guild arriving): keep the shared list current.
      this.#chain(() => token === this.#ctx.token() ? this.writeServers(token, true) : undefined);
    }
    this.#queueInterest(union);
  }

  /** The term ended: unwatch and stop the source; resolves once it has. */
  ended(): Promise<void> {
    const watched = [...this.#watched];
    this.#watched.clear();
    this.#chain(async () => {
      for (const id of watched) this.#inner.watch?.(id, false);
      try {
        await this.#inner.stop?.();
      } catch (err) {
        this.#ctx.log.error(`cluster: the data source failed to stop: ${message(err)}`);
      }
    });
    return this.#ops;
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

  /** Write a server's snapshot from the inner source, unless one exists. */
  seed(serverId: string): Promise<void> {
    const running = this.#seeding.get(serverId);
    if (running) return running;
    const token = this.#ctx.token();
    const p = (async () => {
      if (!token || !this.#ctx.conn()) return;
      try {
        // A late request (a join racing a removal) must not bring a gone server back.
        if (!(serverId in await this.#inner.getServerData())) return;
        const users = userMapSchema.parse(await this.#inner.getUserData(serverId));
        const pairs: string[] = [];
        for (const [uid, u] of Object.entries(users)) pairs.push(uid, JSON.stringify(u));
        const r = await this.writeSnapshot(serverId, token, pairs);
        // Not awaited: seeding runs inside the chain the stop is appended to.
        if (r === -1) void this.#ctx.stepDown("fenced by redis while seeding");
        else if (r > 0) this.#ctx.log.debug(`cluster: seeded ${serverId} (seq ${r})`);
      } catch (err) {
        this.#ctx.log.warn(`cluster: cannot seed ${serverId}: ${message(err)}`);
      }
    })().finally(() => this.#seeding.delete(serverId));
    this.#seeding.set(serverId, p);
    return p;
  }

  /** Write a snapshot ("missing" mode: only when none exists); `token` "" restores one. */
  writeSnapshot(serverId: string, token: string, pairs: string[]): Promise<number> {
    const k = this.#ctx.key;
    return this.#ctx.conn()!.scripts.seed(
      k("leader"),
      k("epoch"),
      k("seq", serverId),
      k("users", serverId),
      k("snap", serverId),
      token,
      k("ev", serverId),
      "missing",
      ...pairs,
    );
  }

  #guardedSink(token: string): EventSink {
    return {
      emit: (e) => {
        const sink = this.#ctx.sink();
        if (this.#ctx.token() !== token || !this.#ctx.valid(token) || !sink) {
          this.#ctx.fenced();
          return;
        }
        // The server's sink checks the event and publishes it with origin "source".
        sink.emit(e);
      },
    };
  }

  /** Run `op` after every earlier start/stop/watch of the inner source; a failure is logged, never blocks the next. */
  #chain(op: () => Promise<void> | void): Promise<void> {
    this.#ops = this.#ops.then(op).catch((err) => {
      this.#ctx.log.error(`cluster: the data source failed: ${message(err)}`);
    });
    return this.#ops;
  }

  /** Follow the newest interest after the source has started; older ones are skipped. */
  #queueInterest(union: Set<string>): void {
    this.#wantInterest = union;
    if (this.#interestQueued) return;
    this.#interestQueued = true;
    this.#chain(() => {
      this.#interestQueued = false;
      return this.#ctx.token() ? this.#followInterest(this.#wantInterest) : undefined;
    });
  }

  /** Run the inner source where any instance has viewers, seeding snapshots first. */
  async #followInterest(union: Set<string>): Promise<void> {
    const token = this.#ctx.token();
    for (const id of union) {
      if (this.#watched.has(id)) continue;
      this.#watched.add(id);
      await this.seed(id);
      if (this.#ctx.token() !== token) return;
      this.#inner.watch?.(id, true);
    }
    for (const id of [...this.#watched]) {
      if (union.has(id)) continue;
      this.#watched.delete(id);
      this.#inner.watch?.(id, false);
    }
  }
}
