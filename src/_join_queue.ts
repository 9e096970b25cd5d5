/**
 * The global outbound budget and its fair join queue: a `server-join` is
 * sent only while the unsent bytes of all sockets, plus the joins granted
 * and not yet sent, stay within `maxTotalBufferedBytes`. Other joins wait in
 * arrival order (nobody overtakes, nobody is dropped for waiting) and are
 * served as bytes drain; past `joinQueueLength` waiters, a join is refused.
 *
 * A decision costs O(1): the unsent total is the sum the charge ledger keeps
 * as sends and sweeps see each socket (`_charge.ts`), and while anyone waits
 * or a join is on its way, the queue looks again only at the joins on their
 * way (the only big backlogs that drain between sweeps), every `pollMs`.
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

/** How a {@link JoinQueue} watches and reports, beyond its limits. */
export interface JoinQueueOptions {
  /** The exact unsent bytes of every socket, for the gauge only (it may walk them all); default: the tracked sum. */
  measure?: () => number;
  /** Told once, at the first join of at least `bigJoinBytes`, with its size. */
  onBigJoin?: (bytes: number) => void;
  /** Default 1 MiB. */
  bigJoinBytes?: number;
  /** How often joins on their way are looked at while anyone waits or one is on its way; default 20 ms. */
  pollMs?: number;
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
  #measure: () => number;
  #onBigJoin: ((bytes: number) => void) | undefined;
  #bigJoinBytes: number;

  /**
   * `unsent()` is the unsent bytes of every socket as last seen (cheap: it
   * is asked on each decision, and every `pollMs` while anyone waits); it
   * must never be below the truth by more than a sweep's worth.
   */
  constructor(
    limits: { maxTotalBufferedBytes: number; joinQueueLength: number },
    unsent: () => number,
    metrics: Metrics,
    options: JoinQueueOptions = {},
  ) {
    this.#max = limits.maxTotalBufferedBytes;
    this.#length = limits.joinQueueLength;
    this.#unsent = unsent;
    this.#metrics = metrics;
    this.#pollMs = options.pollMs ?? 20;
    this.#measure = options.measure ?? unsent;
    this.#onBigJoin = options.onBigJoin;
    this.#bigJoinBytes = options.bigJoinBytes ?? 1 << 20;
  }

  /** Joins waiting now. */
  get length(): number {
    return this.#waiting.length;
  }

  /** The unsent bytes of all sockets, measured now (the metrics' gauge). */
  unsentBytes(): number {
    return this.#metrics.unsentBytes = this.#measure();
  }

  /**
   * Ask to send a join of `bytes`. Resolves at once when nobody waits and the
   * budget has room; otherwise when its turn comes, or with `full` when
   * `joinQueueLength` joins already wait.
   */
  enter(joiner: Joiner, bytes: number): Promise<Turn> {
    if (this.#waiting.length === 0 && this.#fits(bytes)) {
      return Promise.resolve(this.#grant(joiner, bytes, -1, false));
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

  /**
   * Take a turn at once when {@link enter} would give one without waiting
   * (nobody waits and the budget has room), with no promise and no turn
   * object: `true` means send now and call {@link sent} in the same tick;
   * `false`, go through `enter` (to wait, or be refused).
   */
  tryEnter(bytes: number): boolean {
    if (this.#waiting.length > 0 || !this.#fits(bytes)) return false;
    this.#take(bytes, 0);
    return true;
  }

  /** A join of `bytes` granted by {@link tryEnter} was sent (or given up): its bytes are the socket's now. */
  sent(joiner: Joiner, bytes: number): void {
    this.#granted -= bytes;
    // Deno has no drain event and sweeps nothing: the queue watches joins on their way.
    if (joiner.isOpen && joiner.joinInFlight) {
      this.#inFlight.add(joiner);
      this.#poll();
    }
    if (this.#waiting.length > 0) this.#serve();
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
    return this.#unsent() + this.#granted + need <= this.#max;
  }

  /** `since`: when it started waiting; -1 when it did not wait (no clock reading needed). */
  #grant(joiner: Joiner, bytes: number, since: number, queued: boolean): Turn {
    const waitedMs = since < 0 ? 0 : performance.now() - since;
    this.#take(bytes, waitedMs);
    let once = false;
    return {
      go: true,
      queued,
      waitedMs,
      done: () => {
        if (once) return;
        once = true;
        this.sent(joiner, bytes);
      },
    };
  }

  #take(bytes: number, waitedMs: number): void {
    this.#observe(waitedMs / 1000);
    this.#granted += bytes;
    if (this.#onBigJoin && bytes >= this.#bigJoinBytes) {
      const told = this.#onBigJoin;
      this.#onBigJoin = undefined;
      told(bytes);
    }
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
