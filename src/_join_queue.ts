/**
 * The global outbound budget and its fair join queue: a `server-join` is
 * sent only while the unsent bytes of all sockets, plus the joins granted
 * and not yet sent, stay within `maxTotalBufferedBytes`. Other joins wait in
 * arrival order (nobody overtakes, nobody is dropped for waiting) and are
 * served as bytes drain; past `joinQueueLength` waiters, a join is refused.
 *
 * @module
 */
import { JOIN_WAIT_BUCKETS, type Metrics } from "./_metrics.ts";

/** What the queue needs to know of a joiner. */
export interface Joiner {
  /** Whether it can still receive a join (a closed one leaves the queue). */
  readonly isOpen: boolean;
  /** Whether its last join is still on its way (the queue checks it on each poll). */
  readonly joinInFlight: boolean;
  /** Apply the slow-client rule without sending (a join overdue drops it). */
  sweep(): void;
  /** It waits in the queue now: waiting is not idling (no join deadline). */
  joined(): void;
}

/** The answer to {@link JoinQueue.enter}. */
export type Turn =
  /** Send now (`queued`: after waiting), then call `done()` in the same tick as the send. */
  | { go: true; queued: boolean; waitedMs: number; done: () => void }
  /** No turn: the queue is full, or the joiner went away while waiting. */
  | { go: false; why: "full" | "gone" };

interface Waiter {
  joiner: Joiner;
  bytes: number;
  since: number;
  resolve: (turn: Turn) => void;
}

/**
 * FIFO admission of joins under a byte budget.
 *
 * @example
 * ```ts
 * import { JoinQueue } from "./_join_queue.ts";
 * import { Metrics } from "./_metrics.ts";
 * let unsent = 0;
 * const q = new JoinQueue({ maxTotalBufferedBytes: 100, joinQueueLength: 1 }, () => unsent, new Metrics());
 * const joiner = { isOpen: true, joinInFlight: false, sweep() {}, joined() {} };
 * const first = await q.enter(joiner, 80);
 * if (!first.go) throw new Error("an empty budget must let the first join through");
 * unsent = 80; // sent: the socket now holds it
 * first.done();
 * const second = q.enter(joiner, 80); // 80 + 80 > 100: waits
 * const third = await q.enter(joiner, 10); // the queue holds one waiter: refused
 * if (third.go || third.why !== "full") throw new Error("a full queue must refuse");
 * unsent = 0; // drained
 * if (!(await second).go) throw new Error("served once the bytes drained");
 * q.close();
 * ```
 */
export class JoinQueue {
  #max: number;
  #length: number;
  #unsent: () => number;
  #metrics: Metrics;
  #waiting: Waiter[] = [];
  #granted = 0; // bytes granted and not yet sent
  #inFlight = new Set<Joiner>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #pollMs: number;

  /**
   * `unsent()` is the unsent bytes of every socket now; it is asked on each
   * decision, and every `pollMs` while anyone waits or a join is in flight.
   */
  constructor(
    limits: { maxTotalBufferedBytes: number; joinQueueLength: number },
    unsent: () => number,
    metrics: Metrics,
    pollMs = 20,
  ) {
    this.#max = limits.maxTotalBufferedBytes;
    this.#length = limits.joinQueueLength;
    this.#unsent = unsent;
    this.#metrics = metrics;
    this.#pollMs = pollMs;
  }

  /** Joins waiting now. */
  get length(): number {
    return this.#waiting.length;
  }

  /** The unsent bytes of all sockets, measured now (also kept for the metrics). */
  unsentBytes(): number {
    return this.#metrics.unsentBytes = this.#unsent();
  }

  /**
   * Ask to send a join of `bytes`. Resolves at once when nobody waits and the
   * budget has room; otherwise when its turn comes, or with `full` when
   * `joinQueueLength` joins already wait.
   */
  enter(joiner: Joiner, bytes: number): Promise<Turn> {
    if (this.#waiting.length === 0 && this.#fits(bytes)) {
      return Promise.resolve(this.#grant(joiner, bytes, performance.now(), false));
    }
    if (this.#waiting.length >= this.#length) {
      this.#metrics.joinsRefusedBusy++;
      return Promise.resolve({ go: false, why: "full" });
    }
    return new Promise((resolve) => {
      joiner.joined();
      this.#waiting.push({ joiner, bytes, since: performance.now(), resolve });
      this.#metrics.joinQueueLength = this.#waiting.length;
      this.#poll();
    });
  }

  /** Stop polling and let every waiter go (shutdown): they answer `gone`. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const w of this.#waiting.splice(0)) w.resolve({ go: false, why: "gone" });
    this.#metrics.joinQueueLength = 0;
    this.#inFlight.clear();
  }

  // A join bigger than the budget would never fit: it counts as three quarters of it,
  // so it goes once the unsent bytes are down to a quarter.
  #fits(bytes: number): boolean {
    const need = Math.min(bytes, this.#max * 0.75);
    return this.unsentBytes() + this.#granted + need <= this.#max;
  }

  #grant(joiner: Joiner, bytes: number, since: number, queued: boolean): Turn {
    const waitedMs = performance.now() - since;
    this.#observe(waitedMs / 1000);
    this.#granted += bytes;
    let once = false;
    return {
      go: true,
      queued,
      waitedMs,
      done: () => {
        if (once) return;
        once = true;
        this.#granted -= bytes;
        // Deno has no drain event and sweeps nothing: the queue watches joins on their way.
        if (joiner.isOpen && joiner.joinInFlight) {
          this.#inFlight.add(joiner);
          this.#poll();
        }
        if (this.#waiting.length > 0) this.#serve();
      },
    };
  }

  #observe(seconds: number): void {
    const m = this.#metrics;
    m.joinWaitCount++;
    m.joinWaitSeconds += seconds;
    let i = 0;
    while (i < JOIN_WAIT_BUCKETS.length && seconds > JOIN_WAIT_BUCKETS[i]) i++;
    m.joinWaitBuckets[i]++;
  }

  #serve(): void {
    this.#waiting = this.#waiting.filter((w) => {
      if (w.joiner.isOpen) return true;
      w.resolve({ go: false, why: "gone" });
      return false;
    });
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0].bytes)) {
      const w = this.#waiting.shift()!;
      w.resolve(this.#grant(w.joiner, w.bytes, w.since, true));
    }
    this.#metrics.joinQueueLength = this.#waiting.length;
  }

  #poll(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      for (const j of this.#inFlight) {
        j.sweep();
        if (!j.isOpen || !j.joinInFlight) this.#inFlight.delete(j);
      }
      if (this.#waiting.length > 0) this.#serve();
      if (this.#waiting.length === 0 && this.#inFlight.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    }, this.#pollMs);
  }
}
