/**
 * One instance of a dback cluster over Redis: it is both the server's
 * {@link DataSource} (user maps from the local copies of `_copies.ts`) and
 * its {@link Broker} (every broadcast goes through Redis and comes back to
 * each instance that has viewers of that server). Its own job is the lease
 * election and publishing: the one instance holding the lease runs the inner
 * data source and publishes its events, fenced by an epoch.
 *
 * Internal to the `./redis` entry point; `mod.ts` is the public face.
 *
 * @module
 */
import type { Broker, Deliver, EventOrigin } from "../broker.ts";
import type { ServerEvent } from "../events.ts";
import { Logger } from "../log.ts";
import { type ServerMap, serverMapSchema, type UserMap, userMapSchema } from "../protocol.ts";
import type { DataSource, EventSink } from "../source.ts";
import { closeConnections, type Connections, openConnections } from "./_redis.ts";
import { Copies } from "./_copies.ts";
import { presencePatch } from "./_room.ts";
import { renderClusterMetrics } from "./metrics.ts";
import type { ClusterSettings } from "./_settings.ts";
import { errorText as message } from "../_errors.ts";

/** What an instance reports about itself (rendered in `/metrics` and logs). */
export interface ClusterStatus {
  /** This instance's id in the cluster. */
  instanceId: string;
  /** Whether both Redis connections are up. */
  redisUp: boolean;
  /** `leader` while this instance holds the lease and runs the data source. */
  role: "leader" | "follower";
  /** The newest fencing epoch this instance knows (its own while leader). */
  epoch: number;
  /** The lease holder's token (`instance:epoch`) as last read, or `""`. */
  leader: string;
  /** Seconds between Redis publishing the last applied event and this instance applying it. */
  eventLagSeconds: number;
  /** Servers this instance keeps a local copy of. */
  rooms: number;
  /** Events published by this instance, by kind. */
  published: { source: number; library: number };
  /** Events dropped, by reason. */
  dropped: {
    /** Source events of an epoch older than the newest seen. */
    staleEpoch: number;
    /** Source events refused because the lease was no longer held. */
    fenced: number;
    /** Library broadcasts lost while Redis was down (queue full) or on a failed send. */
    library: number;
    /** Source events the publisher could not send because Redis was down (it steps down after its lease). */
    offline: number;
  };
  /** Times a local copy was reloaded from Redis after a gap, reconnect or new snapshot. */
  resyncs: number;
}

const SERVER_CACHE_MS = 1000;

/** The cluster instance behind `redisCluster()`. */
export class Cluster {
  readonly id: string;
  #s: ClusterSettings;
  #inner: DataSource;
  #factory: (() => DataSource) | undefined;
  /** Whether #inner has been started once (a factory then makes a fresh one). */
  #innerUsed = false;
  #log: Logger;
  #c: Connections | undefined;
  #up = false;
  #deliver: Deliver | undefined;
  #sink: EventSink | undefined;
  #closed = false;
  #started = false;
  // lease
  #token = "";
  #epoch = 0;
  #validUntil = 0;
  #newestEpoch = 0;
  #holder = "";
  #leaseTimer: ReturnType<typeof setTimeout> | undefined;
  #beatTimer: ReturnType<typeof setInterval> | undefined;
  #beatSoon: ReturnType<typeof setTimeout> | undefined;
  #beating = false;
  #beatAgain = false;
  #candidate = false;
  #innerOps: Promise<void> = Promise.resolve();
  #innerWatched = new Set<string>();
  #wantInterest = new Set<string>();
  #serversWritten = "";
  #beats = 0;
  #interestQueued = false;
  #seeding = new Map<string, Promise<void>>();
  // data
  #copies: Copies;
  #pending: ServerEvent[] = [];
  #servers: { value: ServerMap; at: number } | undefined;
  #serversInFlight: Promise<ServerMap> | undefined;
  #published = { source: 0, library: 0 };
  #dropped = { staleEpoch: 0, fenced: 0, library: 0, offline: 0 };

  constructor(settings: ClusterSettings, inner: DataSource | (() => DataSource)) {
    this.#s = settings;
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
    this.id = settings.instanceId;
    this.#log = new Logger(settings.logLevel, settings.logSink);
    this.#copies = new Copies({
      log: this.#log,
      conn: () => this.#c,
      up: () => this.#up,
      key: (...parts) => this.#key(...parts),
      inner: () => this.#inner,
      deliver: (e) => void this.#deliver?.(e),
      currentEpoch: (epoch) => {
        if (epoch < this.#newestEpoch) {
          this.#dropped.staleEpoch++;
          return false;
        }
        this.#newestEpoch = epoch;
        return true;
      },
      restore: (id, pairs) => this.#writeSnapshot(id, "", pairs),
      serverGone: () => this.#servers = undefined, // read the new list
      snapshotWaitMs: settings.snapshotWaitMs,
    });
  }

  #key(...parts: string[]): string {
    return [this.#s.namespace, ...parts].join(":");
  }
  #channel(serverId: string): string {
    return this.#key("ev", serverId);
  }

  // ---------------------------------------------------------------- status

  /** A snapshot of this instance's cluster state. */
  status(): ClusterStatus {
    return {
      instanceId: this.id,
      redisUp: this.#up,
      role: this.#token ? "leader" : "follower",
      epoch: this.#token ? this.#epoch : this.#newestEpoch,
      leader: this.#holder,
      eventLagSeconds: this.#copies.lag,
      rooms: this.#copies.size,
      published: { ...this.#published },
      dropped: { ...this.#dropped },
      resyncs: this.#copies.resyncs,
    };
  }

  // ---------------------------------------------------------------- broker

  /** {@link Broker.open}: connect to Redis (in the background when it is down). */
  async open(deliver: Deliver): Promise<void> {
    if (this.#c) throw new Error("redis cluster is already open");
    this.#deliver = deliver;
    const { promise: firstUp, resolve } = Promise.withResolvers<void>();
    this.#c = openConnections(this.#s.url, this.#s.backoff, (up, why) => {
      this.#onState(up, why);
      if (up) resolve();
    });
    this.#c.sub.on(
      "message",
      (channel: string, message: string) => this.#onMessage(channel, message),
    );
    this.#c.sub.subscribe(this.#key("ctl")).catch(() => {});
    const wait = setTimeout(resolve, this.#s.connectWaitMs);
    await firstUp;
    clearTimeout(wait);
    if (!this.#up) {
      this.#log.warn(
        `cluster: redis at ${redactUrl(this.#s.url)} unreachable; serving and retrying`,
      );
    }
  }

  /** {@link Broker.publish}: send through Redis; delivery here happens when it comes back. */
  publish(event: ServerEvent, origin: EventOrigin): number {
    if (this.#closed) return 0;
    if (origin === "source") {
      if (!this.#leaderValid()) {
        this.#dropped.fenced++;
        return 0;
      }
      if (!this.#up) {
        // Counted, not logged per event: the outage itself is logged once.
        this.#dropped.offline++;
        return 0;
      }
      if (event.type === "server-gone") {
        // The list first, so an instance told the server is gone reads a list without it.
        const token = this.#token;
        this.#writeServers(token).catch((err) => {
          this.#log.warn(`cluster: cannot write the server list: ${message(err)}`);
        }).then(() => this.#send(event, token));
        return 0;
      }
      this.#send(event, this.#token);
      return 0;
    }
    if (!this.#up) {
      // Library broadcasts survive a short outage: queued, bounded, sent once on reconnect.
      if (this.#s.libraryQueue === 0) {
        this.#dropped.library++;
        return 0;
      }
      if (this.#pending.length >= this.#s.libraryQueue) {
        this.#pending.shift();
        this.#dropped.library++;
      }
      this.#pending.push(event);
      return 0;
    }
    this.#send(event, "");
    return 0;
  }

  /** {@link Broker.watch}: keep a synced copy (and a subscription) only while watched. */
  watch(serverId: string, active: boolean): void {
    if (this.#closed) return;
    this.#copies.watch(serverId, active);
    this.#announceInterest();
  }

  /** {@link Broker.close}: disconnect; no delivery follows. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.stop();
    this.#closed = true;
    this.#copies.clear();
    if (this.#c) closeConnections(this.#c);
    this.#c = undefined;
    this.#deliver = undefined;
  }

  // ---------------------------------------------------------------- source

  /** {@link DataSource.start}: begin heartbeats; the inner source starts on election. */
  start(sink: EventSink): void {
    this.#sink = sink;
    this.#started = true;
    this.#beatTimer = setInterval(() => this.#beat(), Math.max(10, this.#s.leaseMs / 3));
    this.#beat();
  }

  /** {@link DataSource.stop}: step down, release the lease, stop heartbeats. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearInterval(this.#beatTimer);
    clearTimeout(this.#beatSoon);
    const token = this.#token;
    await this.#stepDown("stopping");
    if (token && this.#up && this.#c) {
      // Hand over now instead of making the next leader wait out the lease.
      await this.#c.scripts.release(this.#key("leader"), token).catch(() => {});
    }
    await this.#innerOps;
  }

  /** {@link DataSource.getServerData}: from Redis (written by the leader), else the last known, else the inner source. */
  getServerData(): ServerMap | Promise<ServerMap> {
    const hit = this.#servers;
    if (hit && Date.now() - hit.at < SERVER_CACHE_MS) return hit.value;
    this.#serversInFlight ??= this.#loadServers().finally(() => this.#serversInFlight = undefined);
    return this.#serversInFlight;
  }

  async #loadServers(): Promise<ServerMap> {
    if (this.#up && this.#c) {
      try {
        const raw = await this.#c.cmd.get(this.#key("servers"));
        if (raw !== null) {
          const r = serverMapSchema.safeParse(JSON.parse(raw));
          if (r.success) {
            this.#servers = { value: r.data, at: Date.now() };
            return r.data;
          }
          this.#log.warn("cluster: the server list in redis is invalid; ignoring it");
        }
      } catch (err) {
        this.#log.debug(`cluster: cannot read the server list: ${message(err)}`);
      }
    }
    if (this.#servers) return this.#servers.value;
    return await this.#inner.getServerData();
  }

  /** {@link DataSource.getUserData}: the local copy, loaded from the Redis snapshot on first use. */
  getUserData(serverId: string): Promise<UserMap> {
    return this.#copies.users(serverId);
  }

  /** {@link DataSource.validateDiscordUser}: the inner source's. */
  validateDiscordUser(
    ...args: Parameters<NonNullable<DataSource["validateDiscordUser"]>>
  ): ReturnType<NonNullable<DataSource["validateDiscordUser"]>> {
    return this.#inner.validateDiscordUser ? this.#inner.validateDiscordUser(...args) : false;
  }

  /** {@link DataSource.getClientId}: the inner source's. */
  getClientId(serverId: string): ReturnType<NonNullable<DataSource["getClientId"]>> {
    return this.#inner.getClientId ? this.#inner.getClientId(serverId) : undefined;
  }

  // ---------------------------------------------------------------- lease

  #leaderValid(): boolean {
    if (!this.#token) return false;
    if (performance.now() < this.#validUntil) return true;
    // Late timers (a paused process) must not publish: the lease ran out.
    this.#stepDown("lease expired before it could be renewed");
    return false;
  }

  async #beat(): Promise<void> {
    if (!this.#started || !this.#c) return;
    if (this.#beating) {
      this.#beatAgain = true;
      return;
    }
    this.#beating = true;
    try {
      if (!this.#up) {
        if (this.#token && performance.now() >= this.#validUntil) {
          await this.#stepDown("redis unreachable");
        }
        return;
      }
      const watched = this.#copies.watched();
      const sent = performance.now();
      const candidate = this.#candidate && this.#s.candidate;
      const [epoch, holder, lists] = await this.#c.scripts.heartbeat(
        this.#key("leader"),
        this.#key("epoch"),
        this.#key("interest"),
        this.id,
        this.#token,
        this.#s.leaseMs,
        this.#newestEpoch,
        JSON.stringify(watched),
        this.#s.leaseMs * 3,
        candidate ? "1" : "0",
      );
      // The first heartbeat after (re)connecting only raises the epoch floor.
      this.#candidate = true;
      this.#holder = holder;
      const holderEpoch = Number(holder.split(":").pop() ?? 0) || 0;
      if (holderEpoch > this.#newestEpoch) this.#newestEpoch = holderEpoch;
      if (epoch > 0 && this.#token && epoch !== this.#epoch) {
        // The lease lapsed and was taken again: a new term, with a new source run.
        await this.#stepDown(`lease lapsed (epoch ${this.#epoch} → ${epoch})`);
      }
      if (epoch > 0 && this.#started) {
        const fresh = !this.#token;
        this.#token = `${this.id}:${epoch}`;
        this.#epoch = epoch;
        this.#validUntil = sent + this.#s.leaseMs;
        clearTimeout(this.#leaseTimer);
        this.#leaseTimer = setTimeout(
          () => this.#stepDown("lease not renewed in time"),
          Math.max(0, this.#validUntil - performance.now()),
        );
        // Not awaited: a slow source start (a gateway connecting) must not
        // hold back the heartbeats that keep the lease.
        if (fresh) {
          this.#serversWritten = "";
          this.#becomeLeader();
        } else if (++this.#beats % 10 === 0) {
          // Sources learn servers over time (a guild arriving): keep the shared list current.
          const t = this.#token;
          this.#chain(() => t === this.#token ? this.#writeServers(t, true) : undefined);
        }
        const union = new Set<string>();
        for (const l of lists) {
          try {
            for (const id of JSON.parse(l) as string[]) union.add(String(id));
          } catch { /* another version's entry */ }
        }
        this.#queueInterest(union);
      } else if (this.#token) {
        await this.#stepDown(`lease lost to ${holder || "nobody"}`);
      }
    } catch (err) {
      this.#log.debug(`cluster: heartbeat failed: ${message(err)}`);
      if (this.#token && performance.now() >= this.#validUntil) {
        await this.#stepDown("cannot renew the lease");
      }
    } finally {
      this.#beating = false;
      if (this.#beatAgain) {
        this.#beatAgain = false;
        queueMicrotask(() => this.#beat());
      }
    }
  }

  #beatNow(): void {
    if (this.#beatSoon || !this.#started) return;
    this.#beatSoon = setTimeout(() => {
      this.#beatSoon = undefined;
      this.#beat();
    }, 5);
  }

  #becomeLeader(): void {
    this.#log.info(`cluster: instance ${this.id} is the publisher (epoch ${this.#epoch})`);
    if (this.#epoch > this.#newestEpoch) this.#newestEpoch = this.#epoch;
    const token = this.#token;
    const sink = this.#guardedSink(token);
    this.#chain(async () => {
      if (this.#token !== token) return;
      try {
        if (this.#factory && this.#innerUsed) this.#inner = this.#factory();
        this.#innerUsed = true;
        // Started first: a gateway source knows its servers only once connected.
        await this.#inner.start?.(sink);
        await this.#writeServers(token, true);
      } catch (err) {
        this.#log.error(`cluster: the data source failed to start: ${message(err)}`);
        // Not awaited: this runs inside the chain the stop is appended to.
        void this.#stepDown("data source failed");
      }
    });
  }

  /**
   * Publish the inner source's server list (fenced: only while `token` holds
   * the lease). With `keepNonEmpty`, an empty list does not replace one: a
   * source that resumed a session may not know its servers yet.
   */
  async #writeServers(token: string, keepNonEmpty = false): Promise<void> {
    const servers = serverMapSchema.parse(await this.#inner.getServerData());
    const json = JSON.stringify(servers);
    if (json === this.#serversWritten) return;
    if (keepNonEmpty && Object.keys(servers).length === 0) return;
    this.#serversWritten = json;
    await this.#c?.scripts.fencedSet(
      this.#key("leader"),
      this.#key("servers"),
      token,
      json,
      0,
    );
  }

  #guardedSink(token: string): EventSink {
    return {
      emit: (e) => {
        if (this.#token !== token || !this.#leaderValid() || !this.#sink) {
          this.#dropped.fenced++;
          return;
        }
        // The server's sink checks the event and hands it to publish() as "source".
        this.#sink.emit(e);
      },
    };
  }

  async #stepDown(why: string): Promise<void> {
    clearTimeout(this.#leaseTimer);
    if (!this.#token) return;
    const was = this.#epoch;
    this.#token = "";
    const watched = [...this.#innerWatched];
    this.#innerWatched.clear();
    const log = why === "stopping" ? this.#log.info : this.#log.warn;
    log.call(this.#log, `cluster: instance ${this.id} stops publishing (epoch ${was}): ${why}`);
    this.#chain(async () => {
      for (const id of watched) this.#inner.watch?.(id, false);
      try {
        await this.#inner.stop?.();
      } catch (err) {
        this.#log.error(`cluster: the data source failed to stop: ${message(err)}`);
      }
    });
    await this.#innerOps;
  }

  /** Run `op` after every earlier start/stop/watch of the inner source; a failure is logged, never blocks the next. */
  #chain(op: () => Promise<void> | void): Promise<void> {
    this.#innerOps = this.#innerOps.then(op).catch((err) => {
      this.#log.error(`cluster: the data source failed: ${message(err)}`);
    });
    return this.#innerOps;
  }

  /** Follow the newest interest after the source has started; older ones are skipped. */
  #queueInterest(union: Set<string>): void {
    this.#wantInterest = union;
    if (this.#interestQueued) return;
    this.#interestQueued = true;
    this.#chain(() => {
      this.#interestQueued = false;
      return this.#token ? this.#followInterest(this.#wantInterest) : undefined;
    });
  }

  /** Run the inner source where any instance has viewers, seeding snapshots first. */
  async #followInterest(union: Set<string>): Promise<void> {
    const token = this.#token;
    for (const id of union) {
      if (this.#innerWatched.has(id)) continue;
      this.#innerWatched.add(id);
      await this.#seed(id);
      if (this.#token !== token) return;
      this.#inner.watch?.(id, true);
    }
    for (const id of [...this.#innerWatched]) {
      if (union.has(id)) continue;
      this.#innerWatched.delete(id);
      this.#inner.watch?.(id, false);
    }
  }

  /** Write a server's snapshot from the inner source, unless one exists. */
  #seed(serverId: string): Promise<void> {
    const running = this.#seeding.get(serverId);
    if (running) return running;
    const token = this.#token;
    const p = (async () => {
      if (!token || !this.#c) return;
      try {
        // A late request (a join racing a removal) must not bring a gone server back.
        if (!(serverId in await this.#inner.getServerData())) return;
        const users = userMapSchema.parse(await this.#inner.getUserData(serverId));
        const pairs: string[] = [];
        for (const [uid, u] of Object.entries(users)) pairs.push(uid, JSON.stringify(u));
        const r = await this.#writeSnapshot(serverId, token, pairs);
        // Not awaited: seeding runs inside the chain the stop is appended to.
        if (r === -1) void this.#stepDown("fenced by redis while seeding");
        else if (r > 0) this.#log.debug(`cluster: seeded ${serverId} (seq ${r})`);
      } catch (err) {
        this.#log.warn(`cluster: cannot seed ${serverId}: ${message(err)}`);
      }
    })().finally(() => this.#seeding.delete(serverId));
    this.#seeding.set(serverId, p);
    return p;
  }

  #writeSnapshot(serverId: string, token: string, pairs: string[]): Promise<number> {
    return this.#c!.scripts.seed(
      this.#key("leader"),
      this.#key("epoch"),
      this.#key("seq", serverId),
      this.#key("users", serverId),
      this.#key("snap", serverId),
      token,
      this.#channel(serverId),
      "missing",
      ...pairs,
    );
  }

  // ---------------------------------------------------------------- sending

  #send(event: ServerEvent, token: string): void {
    const c = this.#c;
    if (!c) return;
    const server = event.event.server;
    let op = "none", uid = "", patch = "";
    if (event.type === "presence") {
      uid = event.event.uid;
      op = event.event.delete ? "delete" : "presence";
      patch = JSON.stringify(presencePatch(event.event));
    }
    if (token) this.#published.source++;
    else this.#published.library++;
    if (event.type === "server-gone") op = "gone";
    c.scripts.publishEvent(
      this.#key("leader"),
      this.#key("epoch"),
      this.#key("seq", server),
      this.#key("users", server),
      this.#key("snap", server),
      token,
      this.#channel(server),
      op,
      uid,
      patch,
      JSON.stringify(event),
      token ? "src" : "lib",
    ).then((seq) => {
      if (seq === -1) {
        this.#dropped.fenced++;
        this.#stepDown("fenced by redis: another instance holds the lease");
      }
    }, (err) => {
      // Not retried: the script may have run before the reply was lost, and
      // a retry would then deliver twice.
      if (!token) this.#dropped.library++;
      else this.#dropped.offline++;
      // Once per event would flood the log during an outage, which is logged once anyway.
      if (this.#up) this.#log.warn(`cluster: publish to ${server} failed: ${message(err)}`);
      else this.#log.debug(`cluster: publish to ${server} failed: ${message(err)}`);
    });
  }

  #announceInterest(): void {
    if (!this.#up || !this.#c) return;
    this.#beatNow();
    // Tell the leader at once rather than at its next heartbeat.
    this.#c.cmd.publish(this.#key("ctl"), JSON.stringify({ interest: this.id })).catch(() => {});
  }

  // ---------------------------------------------------------------- receiving

  #onState(up: boolean, why: string): void {
    if (this.#closed) return;
    this.#up = up;
    if (!up) {
      this.#candidate = false;
      this.#log.warn(
        `cluster: redis down (${why}); keeping ${this.#copies.size} local copies, reconnecting`,
      );
      return;
    }
    this.#log.info(`cluster: redis up at ${redactUrl(this.#s.url)} (instance ${this.id})`);
    // Pub/sub lost whatever was published while down, and copies made while
    // down (before the first connection too) are not subscribed: reload all.
    const reloaded = this.#copies.reloadAll();
    this.#beatNow();
    // Queued broadcasts go out after the copies are back, so none lands on a
    // snapshot that is then restored over it.
    reloaded.then(() => {
      const pending = this.#pending;
      this.#pending = [];
      if (this.#up) { for (const e of pending) this.#send(e, ""); }
      else this.#pending.unshift(...pending);
    });
  }

  #onMessage(channel: string, raw: string): void {
    if (this.#closed) return;
    if (channel === this.#key("ctl")) return this.#onControl(raw);
    const prefix = this.#key("ev", "");
    if (!channel.startsWith(prefix)) return;
    this.#copies.onMessage(channel.slice(prefix.length), raw);
  }

  #onControl(raw: string): void {
    let msg: { need?: unknown; interest?: unknown };
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!this.#token) return;
    if (typeof msg.need === "string") this.#seed(msg.need);
    else if (msg.interest !== undefined) this.#beatNow();
  }

  // ---------------------------------------------------------------- session store

  /** Read a value any instance may read. */
  async get(key: string): Promise<string | null> {
    if (!this.#c || !this.#up) return null;
    return await this.#c.cmd.get(this.#key(key));
  }

  /** Write a value only while holding the lease; `false` when not leader or redis refused. */
  async fencedSet(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (!this.#c || !this.#up || !this.#leaderValid()) return false;
    const r = await this.#c.scripts.fencedSet(
      this.#key("leader"),
      this.#key(key),
      this.#token,
      value,
      ttlMs,
    );
    return r !== -1;
  }

  /** This instance's broker face. */
  get broker(): Broker {
    return {
      open: (d) => this.open(d),
      publish: (e, origin) => this.publish(e, origin),
      watch: (id, a) => this.watch(id, a),
      close: () => this.close(),
      metrics: () => renderClusterMetrics(this.status()),
    };
  }

  /** This instance's data-source face. */
  get source(): DataSource {
    return {
      getServerData: () => this.getServerData(),
      getUserData: (id) => this.getUserData(id),
      validateDiscordUser: (t, u, id) => this.validateDiscordUser(t, u, id),
      getClientId: (id) => this.getClientId(id),
      start: (sink) => this.start(sink),
      // Interest is tracked through the broker's watch; the server calls both.
      watch: () => {},
      stop: () => this.stop(),
    };
  }
}

/** A Redis URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid url)";
  }
}
