/**
 * Discord's IDENTIFY rules for one bot ({@link IdentifyBudget}), shared by
 * every shard of it.
 *
 * @module
 */
import { jitteredBackoff } from "../_backoff.ts";
import type { SessionStartLimit } from "./_rest.ts";

/** When the next IDENTIFY of a shard may go, and what to log about the wait. */
export interface IdentifyPlan {
  /** Wait before connecting, ms (0: now). */
  wait: number;
  /** Log level of the line. */
  level: "debug" | "info" | "warn";
  /** Why the wait, when there is one. */
  message: string;
}

/** Options of {@link IdentifyBudget}. */
export interface IdentifyBudgetOptions {
  /** Least time between two IDENTIFYs of one bucket, ms. Default 5000. */
  intervalMs?: number;
  /** Shards that may IDENTIFY in the same slot (`session_start_limit.max_concurrency`). Default 1. */
  maxConcurrency?: number;
  /** IDENTIFYs allowed per period. Default unknown (no cap). */
  total?: number;
  /** IDENTIFYs left in this period. Default unknown (no cap). */
  remaining?: number;
  /** When this period ends, ms from now. */
  resetAfterMs?: number;
}

/**
 * Discord's IDENTIFY rules for one bot, shared by all its shards: one
 * IDENTIFY per `intervalMs` per bucket (`shard id % maxConcurrency`), and
 * none once `remaining` is used up until the period resets. The interval is
 * counted from the IDENTIFY that was really sent ({@link IdentifyBudget.sent}),
 * plus a small margin, so a socket that opened late cannot bring the next
 * IDENTIFY closer than Discord allows.
 *
 * @example
 * ```ts
 * import { IdentifyBudget } from "./_identify_budget.ts";
 *
 * const budget = new IdentifyBudget({ intervalMs: 5000, maxConcurrency: 2 });
 * const waits = [0, 1, 2, 3].map((shard) => budget.reserve(shard, 0));
 * if (waits.join() !== "0,0,5000,5000") throw new Error(waits.join());
 * ```
 */
export class IdentifyBudget {
  #intervalMs: number;
  #maxConcurrency: number;
  #total: number | undefined;
  #remaining: number | undefined;
  #resetAt = 0;
  #marginMs: number;
  #next = new Map<number, number>();
  #sentAt = new Map<number, number>();

  /** Create a budget; `update` it with each fresh `session_start_limit`. */
  constructor(options: IdentifyBudgetOptions = {}) {
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#maxConcurrency = Math.max(1, options.maxConcurrency ?? 1);
    // Clocks and sockets jitter by a few ms; Discord counts from what it received.
    this.#marginMs = Math.min(250, Math.ceil(this.#intervalMs * 0.05));
    this.#total = options.total;
    this.#remaining = options.remaining;
    if (options.resetAfterMs !== undefined) this.#resetAt = Date.now() + options.resetAfterMs;
  }

  /** `session_start_limit.max_concurrency` in force. */
  get maxConcurrency(): number {
    return this.#maxConcurrency;
  }

  /** IDENTIFYs left in this period, when known. */
  get remaining(): number | undefined {
    return this.#remaining;
  }

  /** Take Discord's latest numbers (from `GET /gateway/bot`). */
  update(limit: SessionStartLimit, now = Date.now()): void {
    this.#total = limit.total;
    this.#remaining = limit.remaining;
    this.#resetAt = now + limit.resetAfterMs;
    this.#maxConcurrency = Math.max(1, limit.maxConcurrency);
  }

  /** Reserve the next IDENTIFY slot of `shard`; returns how long to wait for it, ms. */
  reserve(shard: number, now = Date.now()): number {
    let start = now;
    if (this.#remaining !== undefined && this.#remaining <= 0) {
      if (this.#resetAt > now) start = this.#resetAt;
      this.#remaining = this.#total;
      this.#resetAt = start + 24 * 60 * 60_000;
    }
    const bucket = shard % this.#maxConcurrency;
    start = Math.max(start, this.#next.get(bucket) ?? 0);
    this.#next.set(bucket, start + this.#intervalMs);
    if (this.#remaining !== undefined) this.#remaining--;
    return start - now;
  }

  /** Record an IDENTIFY of `shard` that was just sent: its bucket's next one waits a full interval (and the margin) from now. */
  sent(shard: number, at = Date.now()): void {
    const bucket = shard % this.#maxConcurrency;
    this.#sentAt.set(bucket, at);
    const next = at + this.#intervalMs + this.#marginMs;
    this.#next.set(bucket, Math.max(this.#next.get(bucket) ?? 0, next));
  }

  /** How long an IDENTIFY of `shard` must still wait, counted from the last one sent in its bucket, ms. */
  holdoff(shard: number, now = Date.now()): number {
    const last = this.#sentAt.get(shard % this.#maxConcurrency);
    return last === undefined ? 0 : Math.max(0, last + this.#intervalMs + this.#marginMs - now);
  }

  /**
   * Reserve the next IDENTIFY of `shard` after `failed` IDENTIFYs in a row
   * that did not reach READY (each stretches the wait: jittered, doubling
   * from `backoff.baseMs`, capped at `backoff.maxMs`).
   */
  plan(shard: number, failed: number, backoff: { baseMs: number; maxMs: number }): IdentifyPlan {
    const exhausted = this.#remaining !== undefined && this.#remaining <= 0;
    const slot = this.reserve(shard);
    const stretch = jitteredBackoff(failed, backoff.baseMs, backoff.maxMs);
    const wait = Math.max(slot, stretch);
    if (stretch >= slot && failed > 0) {
      return {
        wait,
        level: failed >= 2 ? "warn" : "info",
        message: `IDENTIFY failed ${failed} time(s) in a row; next IDENTIFY in ` +
          `${wait} ms (Discord allows 1000 a day and resets the token beyond that)`,
      };
    }
    if (exhausted) {
      return {
        wait,
        level: "warn",
        message: `session_start_limit used up (0 IDENTIFYs left); next IDENTIFY in ${wait} ms, ` +
          "when Discord resets the limit",
      };
    }
    return { wait, level: "debug", message: `waiting ${wait} ms for an IDENTIFY slot` };
  }
}
