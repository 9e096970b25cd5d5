/**
 * The lease election of a cluster: every instance runs a heartbeat script
 * every third of a lease; the one holding the `leader` key is the publisher
 * of its epoch. This module owns the token, the epoch and the newest epoch
 * seen, and tells the publisher when a term begins and ends.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { Connections } from "./_redis.ts";
import { errorText as message } from "../_errors.ts";

/** What the lease needs from the cluster around it. */
export interface LeaseContext {
  /** For role changes and failures. */
  log: Logger;
  /** This instance's id. */
  id: string;
  /** Lease length, ms. */
  leaseMs: number;
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
  /** A term began: this instance holds the lease as `token`. */
  elected(token: string): void;
  /** The lease was renewed; `union` is every instance's interest, `beats` counts renewals. */
  renewed(token: string, union: Set<string>, beats: number): void;
  /** The term of `token` ended (the source must stop); resolves once it has. */
  ended(token: string): Promise<void>;
}

/** One instance's side of the lease. */
export class Lease {
  #ctx: LeaseContext;
  #started = false;
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
  #beats = 0;

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

  /** Whether a source event of `epoch` is current; raises the newest epoch known. */
  current(epoch: number): boolean {
    if (epoch < this.#newestEpoch) return false;
    this.#newestEpoch = epoch;
    return true;
  }

  /** Begin heartbeats. */
  start(): void {
    this.#started = true;
    this.#beatTimer = setInterval(() => this.#beat(), Math.max(10, this.#ctx.leaseMs / 3));
    this.#beat();
  }

  /** Stop heartbeats, end the term, and hand the lease over at once. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearInterval(this.#beatTimer);
    clearTimeout(this.#beatSoon);
    const token = this.#token;
    await this.stepDown("stopping");
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

  /** Whether this instance may publish as `token` now (false also when the lease ran out). */
  valid(token = this.#token): boolean {
    if (!this.#token || token !== this.#token) return false;
    if (performance.now() < this.#validUntil) return true;
    // Late timers (a paused process) must not publish: the lease ran out.
    void this.stepDown("lease expired before it could be renewed");
    return false;
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
  async stepDown(why: string): Promise<void> {
    clearTimeout(this.#leaseTimer);
    if (!this.#token) return;
    const token = this.#token;
    this.#token = "";
    const log = why === "stopping" ? this.#ctx.log.info : this.#ctx.log.warn;
    log.call(
      this.#ctx.log,
      `cluster: instance ${this.#ctx.id} stops publishing (epoch ${this.#epoch}): ${why}`,
    );
    await this.#ctx.ended(token);
  }

  async #beat(): Promise<void> {
    const c = this.#ctx.conn();
    if (!this.#started || !c) return;
    if (this.#beating) {
      this.#beatAgain = true;
      return;
    }
    this.#beating = true;
    try {
      if (!this.#ctx.up()) {
        if (this.#token && performance.now() >= this.#validUntil) {
          await this.stepDown("redis unreachable");
        }
        return;
      }
      const k = this.#ctx.key;
      const sent = performance.now();
      const candidate = this.#candidate && this.#ctx.candidate;
      const [epoch, holder, lists] = await c.scripts.heartbeat(
        k("leader"),
        k("epoch"),
        k("interest"),
        this.#ctx.id,
        this.#token,
        this.#ctx.leaseMs,
        this.#newestEpoch,
        JSON.stringify(this.#ctx.watched()),
        this.#ctx.leaseMs * 3,
        candidate ? "1" : "0",
      );
      // The first heartbeat after (re)connecting only raises the epoch floor.
      this.#candidate = true;
      this.#holder = holder;
      const holderEpoch = Number(holder.split(":").pop() ?? 0) || 0;
      if (holderEpoch > this.#newestEpoch) this.#newestEpoch = holderEpoch;
      if (epoch > 0 && this.#token && epoch !== this.#epoch) {
        // The lease lapsed and was taken again: a new term, with a new source run.
        await this.stepDown(`lease lapsed (epoch ${this.#epoch} → ${epoch})`);
      }
      if (epoch > 0 && this.#started) {
        const fresh = !this.#token;
        this.#token = `${this.#ctx.id}:${epoch}`;
        this.#epoch = epoch;
        this.#validUntil = sent + this.#ctx.leaseMs;
        clearTimeout(this.#leaseTimer);
        this.#leaseTimer = setTimeout(
          () => this.stepDown("lease not renewed in time"),
          Math.max(0, this.#validUntil - performance.now()),
        );
        if (fresh) {
          this.#ctx.log.info(
            `cluster: instance ${this.#ctx.id} is the publisher (epoch ${epoch})`,
          );
          if (epoch > this.#newestEpoch) this.#newestEpoch = epoch;
          this.#ctx.elected(this.#token);
        }
        const union = new Set<string>();
        for (const l of lists) {
          try {
            for (const id of JSON.parse(l) as string[]) union.add(String(id));
          } catch { /* another version's entry */ }
        }
        this.#ctx.renewed(this.#token, union, fresh ? 0 : ++this.#beats);
      } else if (this.#token) {
        await this.stepDown(`lease lost to ${holder || "nobody"}`);
      }
    } catch (err) {
      this.#ctx.log.debug(`cluster: heartbeat failed: ${message(err)}`);
      if (this.#token && performance.now() >= this.#validUntil) {
        await this.stepDown("cannot renew the lease");
      }
    } finally {
      this.#beating = false;
      if (this.#beatAgain) {
        this.#beatAgain = false;
        queueMicrotask(() => this.#beat());
      }
    }
  }
}
