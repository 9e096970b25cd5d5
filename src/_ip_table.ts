/**
 * Per-IP state that outlives connections (internal): open-connection count
 * and the inbound, login-check and join budgets of each client key. An entry stays
 * after its last connection closes, so a client cannot refill its budgets by
 * reconnecting; it is forgotten once its budgets are full again (forgetting
 * it then changes nothing). The table is bounded: past `maxEntries`, the
 * least recently used entry without open connections is evicted.
 *
 * @module
 */
import { TokenBucket } from "./_limits.ts";

/** One client key's state. */
export interface IpEntry {
  /** The client key, one string for all its connections. */
  readonly key: string;
  /** Open connections (dropped ones included until their socket is gone). */
  count: number;
  /** Inbound frames, all its connections together. */
  frames: TokenBucket;
  /** Inbound bytes, all its connections together. */
  bytes: TokenBucket;
  /** Login checks (each may cost a request to Discord). */
  logins: TokenBucket;
  /** Joins (each may be megabytes out). */
  joins: TokenBucket;
}

/** Rates of the budgets. */
export interface IpBudgets {
  /** Frames per second (burst: twice that). */
  framesPerSecond: number;
  /** Bytes per second (burst: twice that). */
  bytesPerSecond: number;
  /** Login checks per minute (burst 5). */
  loginChecksPerMinute: number;
  /** Joins per second (default 2). */
  joinsPerSecond?: number;
  /** Joins in a burst (default 30). */
  joinBurst?: number;
}

/** Login checks a fresh client may make at once. */
export const LOGIN_BURST = 5;

/**
 * The bounded, self-expiring table of per-IP state.
 *
 * @example
 * ```ts
 * import { IpTable } from "./_ip_table.ts";
 * const table = new IpTable({ framesPerSecond: 50, bytesPerSecond: 1e5, loginChecksPerMinute: 20 }, 2);
 * const a = table.acquire("192.0.2.1");
 * if (!a.logins.take()) throw new Error("a fresh client has budget");
 * table.release("192.0.2.1");
 * // The budget is still spent after the last connection closed.
 * if (table.acquire("192.0.2.1") !== a) throw new Error("entry must outlive the connection");
 * ```
 */
export class IpTable {
  #budgets: IpBudgets;
  #max: number;
  // Insertion order is use order: a touched entry is moved to the end.
  #entries = new Map<string, IpEntry>();
  // The entry touched last (the end of the use order): touched again, it need not move.
  #last: IpEntry | undefined;
  // Entries with open connections (never evicted).
  #busy = 0;

  /** `maxEntries`: entries without open connections kept at most (those with are always kept). */
  constructor(budgets: IpBudgets, maxEntries: number) {
    this.#budgets = budgets;
    this.#max = maxEntries;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Open connections of `key`. */
  count(key: string): number {
    return this.#entries.get(key)?.count ?? 0;
  }

  /** The entry of `key`, created if needed, with one more open connection. */
  acquire(key: string, now = performance.now()): IpEntry {
    const entry = this.touch(key, now);
    if (entry.count++ === 0) this.#busy++;
    return entry;
  }

  /** The entry of `key`, created if needed (no connection counted). */
  touch(key: string, now = performance.now()): IpEntry {
    let entry = this.#entries.get(key);
    if (entry === this.#last && entry) return entry;
    if (entry) {
      this.#entries.delete(key);
    } else {
      this.#expire(now);
      const b = this.#budgets;
      entry = {
        key,
        count: 0,
        frames: new TokenBucket(b.framesPerSecond, b.framesPerSecond * 2, now),
        bytes: new TokenBucket(b.bytesPerSecond, b.bytesPerSecond * 2, now),
        logins: new TokenBucket(b.loginChecksPerMinute / 60, LOGIN_BURST, now),
        joins: new TokenBucket(b.joinsPerSecond ?? 2, b.joinBurst ?? 30, now),
      };
    }
    this.#entries.set(key, entry);
    this.#last = entry;
    return entry;
  }

  /** One connection of `key` is gone. The entry stays until its budgets are full again. */
  release(key: string): void {
    const entry = this.#entries.get(key);
    if (entry && entry.count > 0 && --entry.count === 0) this.#busy--;
  }

  /** Spend one login check of `key`; `false` when its budget is spent. */
  takeLogin(key: string, now = performance.now()): boolean {
    return this.touch(key, now).logins.take(1, now);
  }

  // Forget idle entries whose budgets refilled (oldest first, a few per call so a
  // create never scans the whole table), then evict idle ones past the bound.
  #expire(now: number): void {
    let looked = 0;
    for (const [key, e] of this.#entries) {
      if (++looked > 8) break;
      if (
        e.count === 0 && e.logins.full(now) && e.frames.full(now) && e.bytes.full(now) &&
        e.joins.full(now)
      ) {
        this.#entries.delete(key);
      }
    }
    if (this.#entries.size - this.#busy < this.#max) return;
    for (const [key, e] of this.#entries) {
      if (e.count > 0) continue;
      this.#entries.delete(key);
      if (this.#entries.size - this.#busy < this.#max) return;
    }
  }
}
