/**
 * Who may open a WebSocket, and the life of every connection let in: the
 * origin check, the total and per-IP caps (a dropped socket stays charged
 * to its address, see `_charge.ts`), the per-IP inbound, login-check and join budgets (kept
 * in a table that outlives connections, see `_ip_table.ts`; the client and
 * its key come from `_client_address.ts`), and the set of live connections
 * the server drains on stop.
 *
 * @module
 */
import { ChargeLedger } from "./_charge.ts";
import type { Client } from "./_client_address.ts";
import { type IpEntry, IpTable } from "./_ip_table.ts";
import { TokenBucket } from "./_limits.ts";
import { Connection, type ConnectionHandler } from "./_connection.ts";
import type { ConnectionLimits, IpBudget } from "./_connection_limits.ts";
import type { Hub } from "./_hub.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import type { Settings } from "./options.ts";

/** The per-connection join budget: joins per second, and the burst. */
interface JoinRate {
  joinsPerSecond: number;
  joinBurst: number;
}

/**
 * One connection's view of its address's budgets, plus its own join bucket
 * (made on its first join, let go when full again: most connections join
 * once, some never): one
 * object with methods on its prototype rather than three closures and
 * their context per connection.
 */
class ConnectionBudget implements IpBudget {
  #table: IpTable;
  #key: string;
  #entry: IpEntry;
  #rate: JoinRate;
  #joins: TokenBucket | undefined;

  constructor(table: IpTable, entry: IpEntry, rate: JoinRate) {
    this.#table = table;
    this.#key = entry.key;
    this.#entry = entry;
    this.#rate = rate;
  }

  // One clock reading per frame or join for every bucket it touches (each is a call into the runtime).
  take(bytes: number, now: number = performance.now()): boolean {
    return this.#entry.frames.take(1, now) && this.#entry.bytes.take(bytes, now);
  }

  join(now: number = performance.now()): boolean {
    const joins = this.#joins ??= new TokenBucket(
      this.#rate.joinsPerSecond,
      this.#rate.joinBurst,
      now,
    );
    return joins.take(1, now) && this.#entry.joins.take(1, now);
  }

  login(): boolean {
    return this.#table.takeLogin(this.#key);
  }

  settle(now: number): void {
    if (this.#joins?.full(now)) this.#joins = undefined;
  }
}

/** Why an upgrade was refused, and what to answer. */
export interface Refusal {
  /** HTTP status. */
  status: 403 | 429 | 503;
  /** Short reason, the `/metrics` label. */
  reason: string;
  /** Title of the error page. */
  title: string;
}

/** Quote a client-chosen value for a log line: escaped, and cut to `max` characters. */
export function quote(value: string, max = 100): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value)
    .replace(
      /[\u007f-\u009f\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
}

/** Admission control and the connection registry. */
export class Admission {
  #settings: Settings;
  #limits: ConnectionLimits;
  #hub: Hub<Connection>;
  #handler: ConnectionHandler;
  #log: Logger;
  #metrics: Metrics;
  #live = new Set<Connection>();
  #perIp: IpTable;
  #charges: ChargeLedger;
  #nextId = 1;

  /** `memory`: what the runtime holds per socket (the transport's measured figures). */
  constructor(
    settings: Settings,
    hub: Hub<Connection>,
    handler: ConnectionHandler,
    log: Logger,
    metrics: Metrics,
    memory: { factor?: number; keepsLargestFrame?: boolean } = {},
  ) {
    this.#settings = settings;
    this.#charges = new ChargeLedger({
      slots: settings.maxConnectionsPerIp,
      bytes: settings.maxConnectionsPerIp * settings.maxBufferedBytes,
      quarantineMs: settings.dropQuarantineMs,
      factor: memory.factor ?? 2,
      keepsLargestFrame: memory.keepsLargestFrame,
    });
    this.#limits = {
      maxFrameBytes: settings.maxFrameBytes,
      ratePerSecond: settings.ratePerSecond,
      rateBurst: settings.rateBurst,
      rateStrikes: settings.rateStrikes,
      joinTimeoutMs: settings.joinTimeoutMs,
      openTimeoutMs: settings.openTimeoutMs,
      highWaterBytes: settings.highWaterBytes,
      slowGraceMs: settings.slowClientGraceMs,
      maxBufferedBytes: settings.maxBufferedBytes,
      joinMinBytesPerSecond: settings.joinMinBytesPerSecond,
      memoryFactor: memory.factor ?? 2,
    };
    this.#perIp = new IpTable({
      framesPerSecond: settings.ipFramesPerSecond,
      bytesPerSecond: settings.ipBytesPerSecond,
      loginChecksPerMinute: settings.ipLoginChecksPerMinute,
      joinsPerSecond: settings.ipJoinsPerSecond,
      // Every connection an address may hold can join once at once: a NAT's herd after a restart
      // is not churn.
      joinBurst: Math.max(settings.ipJoinBurst, settings.maxConnectionsPerIp),
    }, settings.maxTrackedIps);
    this.#hub = hub;
    this.#handler = handler;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Connections whose sockets the server has not seen close (dropped ones included). */
  get size(): number {
    return this.#live.size;
  }

  /** Dropped connections still charged to their address after their socket closed. */
  get lingering(): number {
    return this.#charges.lingering;
  }

  /** Client keys whose budgets are remembered now. */
  get trackedIps(): number {
    return this.#perIp.size;
  }

  /** Whether {@link Admission.check} reads the `Origin` (an origin list is configured). */
  get checksOrigin(): boolean {
    return this.#settings.allowedOrigins !== undefined;
  }

  /**
   * Whether an upgrade from `client` with this `Origin` may go ahead.
   * `ownOrigins` gives the server's own (its page may always connect); they
   * come from the configuration, never from the request's `Host`. Asked only
   * when `allowedOrigins` is set and does not list the origin.
   */
  check(
    client: Client,
    origin: string | null,
    ownOrigins: () => readonly string[],
  ): Refusal | null {
    const s = this.#settings;
    const ip = client.address;
    let refusal: Refusal | null = null;
    if (
      s.allowedOrigins && !s.allowedOrigins.includes(origin ?? "") &&
      !ownOrigins().includes(origin ?? "")
    ) {
      refusal = { status: 403, reason: "origin", title: "Forbidden" };
    } else if (this.#live.size + this.#charges.lingering >= s.maxConnections) {
      refusal = { status: 503, reason: "max_connections", title: "Service Unavailable" };
    } else if (!this.#charges.admits(client.key)) {
      refusal = { status: 429, reason: "max_per_ip", title: "Too Many Requests" };
    }
    if (refusal) {
      this.#metrics.reject(refusal.reason);
      this.#log.warn(
        `upgrade from ${ip} refused: ${refusal.reason}${
          refusal.reason === "origin"
            ? ` (origin ${origin === null ? "missing" : quote(origin)})`
            : ""
        }`,
      );
    }
    return refusal;
  }

  /**
   * Let a connection in: it counts from now until its socket is gone (or
   * never opens). Its `ip` is the client's per-IP key.
   */
  admit(client: Client): Connection {
    const entry = this.#perIp.acquire(client.key);
    // The entry's key: one string per address, not one per connection.
    const key = entry.key;
    const conn = new Connection(
      `c${this.#nextId++}`,
      key,
      this.#limits,
      this.#handler,
      this,
      new ConnectionBudget(this.#perIp, entry, this.#settings),
      this.#charges.open(key),
      this.#log,
      this.#metrics,
    );
    this.#live.add(conn);
    this.#metrics.connectionsTotal++;
    return conn;
  }

  /** The unsent bytes of every open socket as last seen, in O(1) (see `_charge.ts`). */
  unsentSeen(): number {
    return this.#charges.unsent;
  }

  /** The unsent bytes of every live socket, dropped ones included. */
  unsentBytes(): number {
    // Asked when the unsent-bytes gauge is read (joins read the charge ledger's running
    // total): `forEach` walks the set without an iterator result per connection.
    let total = 0;
    this.#live.forEach((conn) => total += conn.bufferedAmount);
    return total;
  }

  /** The connection sends nothing more: out of its room. */
  leave(conn: Connection): void {
    const room = this.#hub.roomOf(conn);
    if (room === undefined) return;
    this.#hub.leave(conn);
    conn.lastRoom = room;
  }

  /** The socket closed: free its place (a dropped one stays charged until proven gone). */
  release(conn: Connection): void {
    if (!this.#live.delete(conn)) return;
    conn.charge.release();
    this.#perIp.release(conn.ip);
    // Built only when written, as the `connected` line is.
    if (this.#log.enabled("info")) {
      this.#log.info(`disconnected${conn.lastRoom ? ` from ${conn.lastRoom}` : ""}`, conn.id);
    }
  }

  /**
   * The periodic check: the open and join deadlines of every connection (one
   * sweep instead of a timer or two per connection), the slow-client rule on
   * every open one (for quiet guilds and native fan-out), then free the
   * dropped charges that are settled.
   */
  sweep(): void {
    const now = performance.now();
    this.#live.forEach((conn) => conn.sweep(now));
    this.#charges.sweep();
    this.#metrics.chargedDropped = this.#charges.lingering;
  }

  /** Ask every connection to close (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const conn of this.#live) conn.closeWith(code, reason);
  }

  /** Forget connections whose sockets never finished closing (after the shutdown deadline). */
  forgetAll(): number {
    const n = this.#live.size;
    for (const conn of [...this.#live]) conn.drop(1001, "Server shutting down");
    for (const conn of [...this.#live]) this.release(conn);
    this.#charges.clear();
    return n;
  }
}
