/**
 * One instance of a dback cluster over Redis, put together: it is both the
 * server's {@link DataSource} (user maps from the local copies of
 * `_copies.ts`, the server list from `_servers.ts`) and its {@link Broker} (every broadcast goes through Redis,
 * `_stream.ts`, and comes back to each instance with viewers of that server).
 * The lease (`_lease.ts`) decides which instance runs the inner source
 * (`_publisher.ts`). This module wires them, owns the connection state, and
 * queues library broadcasts while Redis is down.
 *
 * Internal to the `./redis` entry point; `mod.ts` is the public face.
 *
 * @module
 */
import type { Broker, Deliver, EventOrigin } from "../broker.ts";
import type { ServerEvent } from "../events.ts";
import { SourceLogger } from "../_source_log.ts";
import type { ServerMap, UserMap } from "../protocol.ts";
import type { DataSource, EventSink, SourceContext } from "../source.ts";
import { closeConnections, type Connections, openConnections } from "./_redis.ts";
import { Copies } from "./_copies.ts";
import { ServerList, type ServerSnapshot } from "./_servers.ts";
import { Lease } from "./_lease.ts";
import { Publisher } from "./_publisher.ts";
import { EventStream, type StreamCounters } from "./_stream.ts";
import { type ClusterStatus, renderClusterMetrics } from "./metrics.ts";
import type { ClusterSettings } from "./_settings.ts";
import { errorText as message } from "../_errors.ts";

/** The cluster instance behind `redisCluster()`. */
export class Cluster {
  readonly id: string;
  #s: ClusterSettings;
  #log: SourceLogger;
  #c: Connections | undefined;
  #up = false;
  #deliver: Deliver | undefined;
  #sink: EventSink | undefined;
  #context: SourceContext | undefined;
  #closed = false;
  #started = false;
  #lease: Lease;
  #publisher: Publisher;
  #stream: EventStream;
  #copies: Copies;
  /** Events made while Redis is down, with their lease token ("": a library broadcast). */
  #pending: { event: ServerEvent; token: string }[] = [];
  #servers: ServerList;
  #counters: StreamCounters = {
    published: { source: 0, library: 0 },
    dropped: { staleEpoch: 0, fenced: 0, library: 0, offline: 0, duplicate: 0 },
  };

  constructor(settings: ClusterSettings, inner: DataSource | (() => DataSource)) {
    this.#s = settings;
    this.id = settings.instanceId;
    this.#log = new SourceLogger(settings.logLevel, settings.logSink);
    const log = this.#log;
    const conn = () => this.#c;
    const up = () => this.#up;
    const key = (...parts: string[]) => [this.#s.namespace, ...parts].join(":");
    this.#lease = new Lease({
      log,
      id: this.id,
      leaseMs: settings.leaseMs,
      timeoutMs: settings.commandTimeoutMs,
      candidate: settings.candidate,
      conn,
      up,
      key,
      watched: () => this.#copies.watched(),
      changed: () => void this.#publisher.changed(),
      tick: () => {
        this.#publisher.tick();
        if (this.#up) this.#c?.pingSub();
      },
      renewed: (token, union, beats) => this.#publisher.renewed(token, union, beats),
    });
    this.#publisher = new Publisher({
      log,
      conn,
      key,
      token: () => this.#lease.token,
      valid: (token) => this.#lease.valid(token),
      stepDown: (why) => this.#lease.stepDown(why),
      sink: () => this.#sink,
      context: () => this.#context,
      fenced: () => this.#counters.dropped.fenced++,
      emit: (event, token) => this.#stream.send(event, token),
      streamLength: settings.streamLength,
      watchdogMs: settings.watchdogMs,
    }, inner);
    this.#stream = new EventStream({
      log,
      conn,
      up,
      key,
      counters: this.#counters,
      streamLength: settings.streamLength,
      fencedByRedis: () =>
        this.#lease.stepDown("fenced by redis: another instance holds the lease"),
      onEvent: (serverId, raw) => this.#copies.onMessage(serverId, raw),
      onControl: (raw) => this.#onControl(raw),
    });
    this.#servers = new ServerList({ log, conn, up, key, inner: () => this.#publisher.inner });
    this.#copies = new Copies({
      log,
      conn,
      up,
      key,
      inner: () => this.#publisher.inner,
      deliver: (e) => void this.#deliver?.(e),
      newestEpoch: () => this.#lease.newest,
      sawEpoch: (epoch) => this.#lease.saw(epoch),
      staleEpoch: () => this.#counters.dropped.staleEpoch++,
      restore: (id, pairs) => this.#publisher.writeSnapshot(id, "", pairs),
      serverGone: () => this.#servers.forget(), // read the new list
      snapshotWaitMs: settings.snapshotWaitMs,
    });
  }

  #key(...parts: string[]): string {
    return [this.#s.namespace, ...parts].join(":");
  }

  // ---------------------------------------------------------------- status

  /** A snapshot of this instance's cluster state. */
  status(): ClusterStatus {
    const { published, dropped } = this.#counters;
    return {
      instanceId: this.id,
      redisUp: this.#up,
      role: this.#lease.token ? "leader" : "follower",
      epoch: this.#lease.epoch,
      leader: this.#lease.holder,
      eventLagSeconds: this.#copies.lag(!this.#up),
      rooms: this.#copies.size,
      published: { ...published },
      dropped: { ...dropped },
      resyncs: this.#copies.resyncs,
      caughtUp: this.#copies.caughtUp,
      lost: this.#copies.lost,
      watchdogRestarts: this.#publisher.restarts,
    };
  }

  // ---------------------------------------------------------------- broker

  /** {@link Broker.open}: connect to Redis (in the background when it is down). */
  async open(deliver: Deliver): Promise<void> {
    if (this.#c) throw new Error("redis cluster is already open");
    this.#deliver = deliver;
    const { promise: firstUp, resolve } = Promise.withResolvers<void>();
    this.#c = openConnections(this.#s.url, this.#s.backoff, this.#s.commandTimeoutMs, (up, why) => {
      this.#onState(up, why);
      if (up) resolve();
    });
    this.#c.sub.on(
      "message",
      (channel: string, message: string) => !this.#closed && this.#stream.route(channel, message),
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
    const { dropped } = this.#counters;
    let token = "";
    if (origin === "source") {
      if (!this.#lease.valid()) {
        dropped.fenced++;
        return 0;
      }
      token = this.#lease.token;
    }
    if (!this.#up) {
      // Both kinds survive a short outage: queued, bounded, sent once on reconnect.
      // A source event still carries its term's token, so Redis refuses it if
      // another instance took the lease meanwhile (the new term corrects presence).
      if (this.#pending.length >= this.#s.libraryQueue) {
        const lost = this.#pending.shift() ?? { token };
        if (lost.token) dropped.offline++;
        else dropped.library++;
        if (this.#s.libraryQueue === 0) return 0;
      }
      this.#pending.push({ event, token });
      return 0;
    }
    this.#send(event, token);
    return 0;
  }

  #send(event: ServerEvent, token: string): void {
    if (token && event.type === "server-gone") {
      // The list first, so an instance told the server is gone reads a list without it.
      this.#publisher.writeServers(token).catch((err) => {
        this.#log.warn(`cluster: cannot write the server list: ${message(err)}`);
      }).then(() => this.#stream.send(event, token));
      return;
    }
    this.#stream.send(event, token);
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
  start(sink: EventSink, context?: SourceContext): void {
    this.#sink = sink;
    this.#context = context;
    this.#log.attach(context);
    this.#started = true;
    this.#lease.start();
  }

  /**
   * {@link DataSource.state}: while this instance publishes, its source's
   * (a gateway still connecting shows in `/healthz`); a follower serves what
   * the publisher shares, so it is ready while Redis is up.
   */
  state(): { kind: string; state: string } {
    const inner = this.#publisher.inner.state?.();
    if (this.#lease.token && inner) return inner;
    return { kind: inner?.kind ?? "custom", state: this.#up ? "ready" : "redis-down" };
  }

  /** {@link DataSource.stop}: step down, release the lease, stop heartbeats. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#lease.stop();
    await this.#publisher.idle();
  }

  /** {@link DataSource.getServerData}: from Redis (written by the leader), else the last known, else the inner source. */
  getServerData(): ServerMap | Promise<ServerMap> {
    return this.#servers.get();
  }

  /** {@link DataSource.getUserData}: the local copy, loaded from the Redis snapshot on first use. */
  getUserData(serverId: string): Promise<UserMap> {
    return this.#copies.users(serverId);
  }

  /** {@link DataSource.validateDiscordUser}: the inner source's. */
  validateDiscordUser(
    ...args: Parameters<NonNullable<DataSource["validateDiscordUser"]>>
  ): ReturnType<NonNullable<DataSource["validateDiscordUser"]>> {
    const inner = this.#publisher.inner;
    return inner.validateDiscordUser ? inner.validateDiscordUser(...args) : false;
  }

  /** {@link DataSource.getClientId}: the inner source's. */
  getClientId(serverId: string): ReturnType<NonNullable<DataSource["getClientId"]>> {
    const inner = this.#publisher.inner;
    return inner.getClientId ? inner.getClientId(serverId) : undefined;
  }

  #announceInterest(): void {
    if (!this.#up || !this.#c) return;
    this.#lease.beatNow();
    // Tell the leader at once rather than at its next heartbeat.
    this.#c.cmd.publish(this.#key("ctl"), JSON.stringify({ interest: this.id })).catch(() => {});
  }

  // ---------------------------------------------------------------- receiving

  #onState(up: boolean, why: string): void {
    if (this.#closed) return;
    this.#up = up;
    if (!up) {
      this.#lease.disconnected();
      this.#log.warn(
        `cluster: redis down (${why}); keeping ${this.#copies.size} local copies, reconnecting`,
      );
      return;
    }
    this.#log.info(`cluster: redis up at ${redactUrl(this.#s.url)} (instance ${this.id})`);
    // Pub/sub lost whatever was published while down, and copies made while
    // down (before the first connection too) are not subscribed: reload all.
    const reloaded = this.#copies.reloadAll();
    this.#lease.beatNow();
    // Queued broadcasts go out after the copies are back, so none lands on a
    // snapshot that is then restored over it.
    reloaded.then(() => {
      const pending = this.#pending;
      this.#pending = [];
      if (this.#up) { for (const p of pending) this.#send(p.event, p.token); }
      else this.#pending.unshift(...pending);
    });
  }

  #onControl(raw: string): void {
    let msg: { need?: unknown; interest?: unknown };
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!this.#lease.token) return;
    if (typeof msg.need === "string") this.#publisher.seed(msg.need);
    else if (msg.interest !== undefined) this.#lease.beatNow();
  }

  // ---------------------------------------------------------------- session store

  /** What viewers saw, for a source taking over a session (see {@link ServerList.snapshots}). */
  snapshots(): Promise<ServerSnapshot[] | undefined> {
    return this.#servers.snapshots();
  }

  /** Read a value any instance may read. */
  async get(key: string): Promise<string | null> {
    if (!this.#c || !this.#up) return null;
    return await this.#c.cmd.get(this.#key(key));
  }

  /** Write a value only while holding the lease; `false` when not leader or redis refused. */
  async fencedSet(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (!this.#c || !this.#up || !this.#lease.valid()) return false;
    const r = await this.#c.scripts.fencedSet(
      this.#key("leader"),
      this.#key(key),
      this.#lease.token,
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
      role: () => this.status().role,
    };
  }

  /** This instance's data-source face. */
  get source(): DataSource {
    return {
      getServerData: () => this.getServerData(),
      getUserData: (id) => this.getUserData(id),
      validateDiscordUser: (t, u, id) => this.validateDiscordUser(t, u, id),
      getClientId: (id) => this.getClientId(id),
      start: (sink, context) => this.start(sink, context),
      state: () => this.state(),
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
