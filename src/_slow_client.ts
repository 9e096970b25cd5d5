/**
 * The slow-client rule (internal), in one place for every way a frame
 * leaves: a send that would take what the runtime holds for a socket (its
 * unsent bytes × the runtime's memory factor) past `maxBufferedBytes` drops
 * the client at once; a client above
 * `highWaterBytes` for `slowGraceMs` is dropped; a `server-join` in flight
 * raises both by its size until it is out (or overdue). Where frames bypass
 * the per-send check (native fan-out), {@link sweepSlowClients} runs the
 * same rule on a timer.
 *
 * @module
 */

/** The limits the rule applies. */
export interface SlowClientLimits {
  /** Unsent bytes above which a client counts as behind. */
  highWaterBytes: number;
  /** How long a client may stay behind (bursts are fine, stalls are not). */
  slowGraceMs: number;
  /** Memory no send may take a socket past: the per-connection memory bound. */
  maxBufferedBytes: number;
  /** Bytes of memory the runtime holds per unsent byte (`_charge.ts`); 1 when not given. */
  memoryFactor?: number;
  /** The slowest a `server-join` may be read before it is overdue. */
  joinMinBytesPerSecond: number;
}

// One clock for every rule (not a closure per connection); read at each call, so a fake clock works.
const performanceNow = () => performance.now();

/**
 * One connection's slow-client state. `check` answers why the client must
 * go, or `null` while it keeps up.
 *
 * @example
 * ```ts
 * import { SlowClientRule } from "./_slow_client.ts";
 * let now = 0;
 * const limits = { highWaterBytes: 100, slowGraceMs: 2000, maxBufferedBytes: 1000, joinMinBytesPerSecond: 10 };
 * const rule = new SlowClientRule(limits, () => now);
 * if (rule.check(950, 100) !== "(hard limit)") throw new Error("past the cap: at once");
 * if (rule.check(500, 10) !== null) throw new Error("behind, within the grace");
 * now = 1999;
 * if (rule.check(500, 10) !== null) throw new Error("still within the grace");
 * now = 2000;
 * if (rule.check(500, 10) !== "for 2000 ms") throw new Error("behind for the grace: dropped");
 * ```
 */
export class SlowClientRule {
  #limits: SlowClientLimits;
  #now: () => number;
  #behindSince = -1;
  #joinAllowance = 0;
  #joinDue = 0;

  /** `now` is the clock in ms (injectable for tests). */
  constructor(limits: SlowClientLimits, now: () => number = performanceNow) {
    this.#limits = limits;
    this.#now = now;
  }

  /**
   * Why the client must be dropped if `bytes` more are queued on top of
   * `buffered` unsent bytes (`(hard limit)`, `(join overdue)`, `for N ms`),
   * or `null` while it keeps up.
   */
  check(buffered: number, bytes: number): string | null {
    const limits = this.#limits;
    let allowance = this.#joinAllowance;
    if (allowance > 0) {
      if (buffered <= limits.highWaterBytes) allowance = this.#joinAllowance = 0;
      else if (this.#now() > this.#joinDue) return "(join overdue)";
    }
    const held = (buffered + bytes - allowance) * (limits.memoryFactor ?? 1);
    if (held > limits.maxBufferedBytes) return "(hard limit)";
    if (buffered > limits.highWaterBytes + allowance) {
      const now = this.#now();
      if (this.#behindSince < 0) this.#behindSince = now;
      else if (now - this.#behindSince >= limits.slowGraceMs) {
        return `for ${Math.round(now - this.#behindSince)} ms`;
      }
    } else {
      this.#behindSince = -1;
    }
    return null;
  }

  /**
   * Whether a new rule would let `bytes` more on top of `buffered` pass and
   * stay as new (not behind, under the cap): no rule need exist for that.
   */
  static calm(limits: SlowClientLimits, buffered: number, bytes: number): boolean {
    return buffered <= limits.highWaterBytes &&
      (buffered + bytes) * (limits.memoryFactor ?? 1) <= limits.maxBufferedBytes;
  }

  /** Whether this rule is in the state of a new one (not behind, no join in flight). */
  get idle(): boolean {
    return this.#behindSince < 0 && this.#joinAllowance === 0;
  }

  /**
   * A `server-join` of `bytes` was queued: its own bytes are not "behind"
   * until it is out, or overdue (`slowGraceMs` plus its size at
   * `joinMinBytesPerSecond`).
   */
  joinSent(bytes: number): void {
    const limits = this.#limits;
    this.#joinAllowance = bytes;
    this.#joinDue = this.#now() + limits.slowGraceMs + bytes * 1000 / limits.joinMinBytesPerSecond;
  }

  /** Whether a `server-join` still counts as in flight (not out, not overdue). */
  get joinInFlight(): boolean {
    return this.#joinAllowance > 0;
  }
}

/**
 * Where frames bypass the per-send check (native fan-out), run the rule on a
 * timer: every `slowGraceMs / 4` (between 50 and 500 ms) each connection
 * `each` yields is swept. Returns the stop function.
 *
 * @example
 * ```ts
 * import { sweepSlowClients } from "./_slow_client.ts";
 * let swept = 0;
 * const stop = sweepSlowClients((fn) => fn({ sweep: () => swept++ }), 200);
 * await new Promise((r) => setTimeout(r, 120));
 * stop();
 * const after = swept;
 * await new Promise((r) => setTimeout(r, 120));
 * if (after === 0 || swept !== after) throw new Error(`swept ${swept} (${after} before stop)`);
 * ```
 */
export function sweepSlowClients<C extends { sweep(): void }>(
  each: (fn: (conn: C) => void) => void,
  slowGraceMs: number,
): () => void {
  const every = Math.max(50, Math.min(500, slowGraceMs / 4));
  const timer = setInterval(() => each((conn) => conn.sweep()), every);
  return () => clearInterval(timer);
}
