// A clock that tests move by hand, written once for every timer-driven test: while a FakeTime is
// alive, `performance.now()` and `Date.now()` return a frozen time that only `tick()` advances,
// and (with `timers: true`) `setTimeout`/`setInterval` wait for that time instead of the wall
// clock. Expiry, back-off and rolling-window logic is then tested by order and outcome, never by
// a real sleep that a loaded machine can stretch.

type Timer = { id: number; at: number; fn: () => void; every?: number };

/** Options of {@link FakeTime}. */
export interface FakeTimeOptions {
  /** Fake `setTimeout`, `setInterval` and their `clear*` too (default: only the clocks). */
  timers?: boolean;
}

/** Frozen `performance.now()`/`Date.now()` (and optionally timers) until disposed. */
export class FakeTime implements Disposable {
  #now: number;
  #epoch: number;
  #timers = new Map<number, Timer>();
  #nextId = 1;
  #restore: Array<() => void> = [];

  constructor(options: FakeTimeOptions = {}) {
    // A whole number, so sums of whole-millisecond steps stay exact.
    this.#now = Math.floor(performance.now());
    this.#epoch = Date.now() - this.#now;
    this.#patch(performance, "now", () => this.#now);
    this.#patch(Date, "now", () => Math.floor(this.#epoch + this.#now));
    if (options.timers) {
      const add = (fn: () => void, ms = 0, every?: number) => {
        const id = this.#nextId++;
        this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn, every });
        return id;
      };
      const clear = (id?: number) => {
        if (id !== undefined) this.#timers.delete(id);
      };
      type Callback = (...args: unknown[]) => void;
      const g = globalThis as unknown as Record<string, unknown>;
      this.#patch(
        g,
        "setTimeout",
        (fn: Callback, ms?: number, ...args: unknown[]) => add(() => fn(...args), ms),
      );
      this.#patch(
        g,
        "setInterval",
        (fn: Callback, ms?: number, ...args: unknown[]) =>
          add(() => fn(...args), ms, Math.max(1, ms ?? 0)),
      );
      this.#patch(g, "clearTimeout", clear);
      this.#patch(g, "clearInterval", clear);
    }
  }

  /** The fake `performance.now()`. */
  get now(): number {
    return this.#now;
  }

  /** How many fake timers are waiting. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Move the clock forward by `ms`, running every fake timer that falls due on the way, in time
   * order, each at its own time; between timers, pending promise callbacks get to run.
   */
  async tick(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers.values()) if (!next || t.at < next.at) next = t;
      if (!next || next.at > end) break;
      this.#now = next.at;
      if (next.every === undefined) this.#timers.delete(next.id);
      else next.at += next.every;
      next.fn();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.#now = end;
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }

  [Symbol.dispose](): void {
    for (const undo of this.#restore.reverse()) undo();
    this.#restore = [];
    this.#timers.clear();
  }

  #patch(target: object, key: string, value: unknown): void {
    const original = Object.getOwnPropertyDescriptor(target, key);
    Object.defineProperty(target, key, { value, configurable: true, writable: true });
    this.#restore.push(() => {
      if (original) Object.defineProperty(target, key, original);
      else delete (target as Record<string, unknown>)[key];
    });
  }
}
