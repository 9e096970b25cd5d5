/**
 * The lease election of a cluster: every instance runs a heartbeat script
 * every third of a lease; the one holding the `leader` key is the publisher
 * of its epoch. This module owns the token, the epoch and the newest epoch
 * seen, and tells the publisher when a term begins and ends.
 *
 * Timing that survives a slow or held link: each heartbeat carries a
 * deadline on Redis's clock (after which the sender has given up on it, so
 * Redis ignores it rather than hand a lease to an instance that will never
 * hear of it); a reply older than the newest epoch known grants nothing;
 * and a term ends when Redis says another instance holds the lease, or when
 * the lease has expired on Redis's side for certain (no renewal could have
 * reached Redis since), never merely because a reply was slow.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { type Connections, isTimeout } from "./_redis.ts";
import { errorText as message } from "../_errors.ts";

/** What the lease needs from the cluster around it. */
export interface LeaseContext {
  /** For role changes and failures. */
  log: Logger;
  /** This instance's id. */
  id: string;
  /** Lease length, ms. */
  leaseMs: number;
  /** Every Redis command's timeout, ms (a heartbeat is given up after it). */
  timeoutMs: number;
  /** Whether this instance may hold the lease. */
  candidate: boolean;
  /** The Redis connections (absent before open and after close). */
  conn(): Connections | undefined;
  /** Whether both connections are up. */
  up(): boolean;
  /** A namespaced key. */
  key(...parts: string[]): string;
  /** Servers with viewers here (recorded with every heartbeat). */
  watched(): string[];
  /** The lease changed hands (or this instance's term began or ended). */
  changed(): void;
  /** Every heartbeat tick, whether or not Redis answers (the watchdog's clock). */
  tick(): void;
  /** The lease was renewed; `union` is every instance's interest. */
  renewed(token: string, union: Set<string>, beats: number): void;
}

/** One instance's side of the lease. */
export class Lease {
  #ctx: LeaseContext;
  #started = false;
  #token = "";
  #epoch = 0;
  /** Until when this instance may publish by its own clock (a renewal's send time + lease). */
  #validUntil = 0;
  /** Until when Redis may still see this instance's lease (no renewal could reach it after). */
  #mayHoldUntil = 0;
  #newestEpoch = 0;
  #holder = "";
  #beatTimer: ReturnType<typeof setInterval> | undefined;
  #beatSoon: ReturnType<typeof setTimeout> | undefined;
  #beating = false;
  #beatAgain = false;
  #candidate = false;
  #beats = 0;
  /** Redis's clock minus this instance's (`Date.now()`), estimated from round trips. */
  #offset = 0;

  constructor(ctx: LeaseContext) {
    this.#ctx = ctx;
  }

  /** The lease token (`instance:epoch`) while this instance holds it, else `""`. */
  get token(): string {
    return this.#token;
  }
  /** This term's epoch while holding the lease, else the newest epoch known. */
  get epoch(): number {
    return this.#token ? this.#epoch : this.#newestEpoch;
  }
  /** The holder's token as last read, or `""`. */
  get holder(): string {
    return this.#holder;
  }

  /** The newest epoch this instance knows (its heartbeats raise Redis's counter to it). */
  get newest(): number {
    return this.#newestEpoch;
  }

  /** A source event of `epoch` was applied here. */
  saw(epoch: number): void {
    if (epoch > this.#newestEpoch) this.#newestEpoch = epoch;
  }

  /** Begin heartbeats. */
  start(): void {
    this.#started = true;
    this.#beatTimer = setInterval(() => this.#tick(), Math.max(10, this.#ctx.leaseMs / 3));
    this.#beat();
  }

  /** Stop heartbeats, end the term, and hand the lease over at once. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearInterval(this.#beatTimer);
    clearTimeout(this.#beatSoon);
    const token = this.#token;
    this.stepDown("stopping");
    const c = this.#ctx.conn();
    if (token && this.#ctx.up() && c) {
      // Hand over now instead of making the next leader wait out the lease.
      await c.scripts.release(this.#ctx.key("leader"), token).catch(() => {});
    }
  }

  /** The connection dropped: the first heartbeat after it only raises the epoch floor. */
  disconnected(): void {
    this.#candidate = false;
  }

  /** Whether this instance may publish as `token` now (its lease renewed within a lease). */
  valid(token = this.#token): boolean {
    return !!this.#token && token === this.#token && performance.now() < this.#validUntil;
  }

  /** Heartbeat soon (interest changed, or Redis came back). */
  beatNow(): void {
    if (this.#beatSoon || !this.#started) return;
    this.#beatSoon = setTimeout(() => {
      this.#beatSoon = undefined;
      this.#beat();
    }, 5);
  }

  /** End this instance's term (no-op when not holding the lease). */
  stepDown(why: string): void {
    if (!this.#token) return;
    this.#token = "";
    this.#validUntil = 0;
    const log = why === "stopping" ? this.#ctx.log.info : this.#ctx.log.warn;
    log.call(
      this.#ctx.log,
      `cluster: instance ${this.#ctx.id} stops publishing (epoch ${this.#epoch}): ${why}`,
    );
    this.#ctx.changed();
  }

  #tick(): void {
    this.#ctx.tick();
    if (this.#token && performance.now() >= this.#mayHoldUntil) {
      this.stepDown("lease expired: no renewal reached redis in time");
    }
    this.#beat();
  }

  async #beat(): Promise<void> {
    const c = this.#ctx.conn();
    if (!this.#started || !c || !this.#ctx.up()) return;
    if (this.#beating) {
      this.#beatAgain = true;
      return;
    }
    this.#beating = true;
    const k = this.#ctx.key;
    const { leaseMs, timeoutMs } = this.#ctx;
    const token = this.#token;
    const sent = performance.now();
    const sentWall = Date.now();
    if (token) this.#mayHoldUntil = sent + timeoutMs + leaseMs;
    try {
      const candidate = this.#candidate && this.#ctx.candidate;
      const [epoch, holder, lists, redisNow] = await c.scripts.heartbeat(
        k("leader"),
        k("epoch"),
        k("interest"),
        this.#ctx.id,
        token,
        leaseMs,
        this.#newestEpoch,
        JSON.stringify(this.#ctx.watched()),
        leaseMs * 3,
        candidate ? "1" : "0",
        Math.round(sentWall + this.#offset + timeoutMs),
      );
      const recvWall = Date.now();
      this.#offset = Number(redisNow) - (sentWall + recvWall) / 2;
      if (epoch === -2) {
        this.#ctx.log.debug("cluster: a heartbeat reached redis after its deadline");
        return;
      }
      // The first heartbeat after (re)connecting only raises the epoch floor.
      this.#candidate = true;
      this.#holder = holder;
      const holderEpoch = epochOf(holder);
      if (holderEpoch > this.#newestEpoch) this.#newestEpoch = holderEpoch;
      if (token && token !== this.#token) {
        // Stepped down meanwhile (fenced, stopping): a renewal it made is handed back.
        if (epoch > 0) await c.scripts.release(k("leader"), token).catch(() => {});
        return;
      }
      if (epoch > 0 && epoch < this.#newestEpoch) {
        // Granted by a reply older than what this instance already knows: give it back.
        await c.scripts.release(k("leader"), `${this.#ctx.id}:${epoch}`).catch(() => {});
        return;
      }
      if (token && epoch !== this.#epoch) {
        this.stepDown(
          epoch > 0
            ? `lease lapsed (epoch ${this.#epoch} → ${epoch})`
            : `lease lost to ${holder || "nobody"}`,
        );
      }
      if (epoch <= 0) return;
      if (!this.#started) {
        await c.scripts.release(k("leader"), `${this.#ctx.id}:${epoch}`).catch(() => {});
        return;
      }
      const fresh = !this.#token;
      this.#token = `${this.#ctx.id}:${epoch}`;
      this.#epoch = epoch;
      this.#validUntil = sent + leaseMs;
      this.#mayHoldUntil = Math.max(this.#mayHoldUntil, sent + timeoutMs + leaseMs);
      if (fresh) {
        this.#ctx.log.info(`cluster: instance ${this.#ctx.id} is the publisher (epoch ${epoch})`);
        if (epoch > this.#newestEpoch) this.#newestEpoch = epoch;
        this.#ctx.changed();
      }
      const union = new Set<string>();
      for (const l of lists) {
        try {
          for (const id of JSON.parse(l) as string[]) union.add(String(id));
        } catch { /* another version's entry */ }
      }
      this.#ctx.renewed(this.#token, union, fresh ? 0 : ++this.#beats);
    } catch (err) {
      this.#ctx.log.debug(`cluster: heartbeat failed: ${message(err)}`);
      if (isTimeout(err)) c.fail("a heartbeat timed out");
    } finally {
      this.#beating = false;
      if (this.#beatAgain) {
        this.#beatAgain = false;
        queueMicrotask(() => this.#beat());
      }
    }
  }
}

function epochOf(token: string): number {
  return Number(token.split(":").pop() ?? 0) || 0;
}
