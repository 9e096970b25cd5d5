/**
 * Join budgets per client address: token buckets that outlive connections
 * (closing and reopening sockets does not refill them), forgotten once full
 * again so idle addresses cost nothing.
 *
 * @module
 */
import { TokenBucket } from "./_limits.ts";

// Full buckets are forgotten in one pass every this many new addresses.
const PRUNE_EVERY = 1024;

/**
 * One join bucket per address.
 *
 * @example
 * ```ts
 * import { AddressBuckets } from "./_join_budget.ts";
 * const joins = new AddressBuckets(1, 2);
 * const taken = [joins.take("10.0.0.1"), joins.take("10.0.0.1"), joins.take("10.0.0.1")];
 * if (taken.join() !== "true,true,false") throw new Error(taken.join());
 * if (!joins.take("10.0.0.2")) throw new Error("another address has its own budget");
 * ```
 */
export class AddressBuckets {
  #rate: number;
  #burst: number;
  #buckets = new Map<string, TokenBucket>();
  #added = 0;

  /** `rate` joins per second per address, `burst` saved up. */
  constructor(rate: number, burst: number) {
    this.#rate = rate;
    this.#burst = burst;
  }

  /** Addresses with a bucket that is not full. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Take one join from `address`'s budget; `false` when it is spent. */
  take(address: string, now = performance.now()): boolean {
    let bucket = this.#buckets.get(address);
    if (!bucket) {
      if (++this.#added % PRUNE_EVERY === 0) this.#prune(now);
      bucket = new TokenBucket(this.#rate, this.#burst, now);
      this.#buckets.set(address, bucket);
    }
    return bucket.take(1, now);
  }

  #prune(now: number): void {
    for (const [address, bucket] of this.#buckets) {
      if (bucket.full(now)) this.#buckets.delete(address);
    }
  }
}
