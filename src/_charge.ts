/**
 * The memory charge of client addresses: what each address's connections
 * make the runtime hold, counted in slots and in estimated bytes (unsent
 * bytes × the runtime's measured overhead factor, plus what the runtime
 * keeps after sending, such as Deno's write buffer). A connection dback
 * dropped stays charged — slot and bytes, frozen at the drop — until the
 * runtime proves its TCP socket is gone and a quarantine has passed,
 * whichever is later: a runtime that reports a socket closed while still
 * holding it (Deno after a frame that follows its close) cannot make an
 * address's memory grow past its budget.
 *
 * The ledger also keeps the sum of every open socket's unsent bytes as last
 * seen (after each send and sweep), so that the global join budget reads it
 * in O(1): a socket's unsent bytes grow only by dback's sends, which update
 * it, so the sum is never below the truth by more than what native fan-out
 * queued since the last sweep; drained bytes leave it at the next look.
 *
 * @module
 */

/** Limits of one client address. */
export interface ChargeLimits {
  /** Connections an address may have charged at once (live and dropped). */
  slots: number;
  /** Estimated bytes an address may have charged at once. */
  bytes: number;
  /** How long a dropped connection stays charged at least, in ms. */
  quarantineMs: number;
  /** Estimated bytes the runtime holds per unsent byte. */
  factor: number;
  /** Whether the runtime keeps a buffer the size of the largest frame sent, per socket (Deno). */
  keepsLargestFrame?: boolean;
}

/**
 * The warning for a runtime that keeps each socket's largest frame (Deno's
 * own server without vectored writes): every viewer of a join this big costs
 * its size for as long as it stays.
 *
 * @example
 * ```ts
 * import { keptFrameWarning } from "./_charge.ts";
 * const text = keptFrameWarning(13_300_000);
 * if (!text.includes("13.3 MB") || !text.includes("--transport node")) throw new Error(text);
 * ```
 */
export function keptFrameWarning(bytes: number): string {
  return `Deno.serve keeps, per WebSocket, a copy of the largest frame it sent until the socket ` +
    `closes: each viewer of this ${(bytes / 1e6).toFixed(1)} MB server-join costs that much ` +
    `for as long as it stays (charged to its address). Start Deno with DENO_USE_WRITEV=1 or ` +
    `allow dback to set it (--allow-env=DENO_USE_WRITEV), or serve with --transport node.`;
}

/**
 * Whether the runtime has let go of a dropped connection's TCP socket:
 * `true` proven gone, `false` still held, `undefined` when the runtime
 * cannot tell (then its close event is taken as the proof).
 */
export type GoneProbe = () => boolean | undefined;

interface Address {
  slots: number;
  bytes: number;
}

/** One connection's charge on its address. */
export class Charge {
  /** The client address charged. */
  readonly address: string;
  #ledger: ChargeLedger;
  #entry: Address;
  #bytes = 0;
  #unsent = 0;
  #largest = 0;
  #state: "live" | "dropped" | "released" = "live";
  #until = 0;
  #probe: GoneProbe | undefined;
  #closed = false;

  /** @internal Made by {@link ChargeLedger.open}. */
  constructor(ledger: ChargeLedger, address: string, entry: Address) {
    this.#ledger = ledger;
    this.address = address;
    this.#entry = entry;
  }

  /** Estimated bytes charged for this connection now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether dback dropped it and it is still charged. */
  get dropped(): boolean {
    return this.#state === "dropped";
  }

  /** The estimate for `unsent` bytes on this runtime. */
  estimate(unsent: number): number {
    return Math.ceil(unsent * this.#ledger.limits.factor);
  }

  /** A frame of `bytes` was handed to the runtime (Deno keeps a buffer the size of the largest). */
  sent(bytes: number): void {
    if (bytes > this.#largest && this.#ledger.limits.keepsLargestFrame) this.#largest = bytes;
  }

  /** Charge what `unsent` bytes cost now (live connections only; a dropped one stays frozen). */
  set(unsent: number): void {
    if (this.#state !== "live") return;
    this.#see(unsent);
    const bytes = this.estimate(unsent) + this.#largest;
    this.#entry.bytes += bytes - this.#bytes;
    this.#bytes = bytes;
  }

  /**
   * Whether the address can afford this connection holding `unsent` bytes
   * (the estimate of the others, plus this one's).
   */
  affords(unsent: number): boolean {
    return this.#entry.bytes - this.#bytes + this.estimate(unsent) + this.#largest <=
      this.#ledger.limits.bytes;
  }

  /**
   * dback dropped the connection while it held `unsent` bytes: charged as
   * that until `probe` proves the socket gone and the quarantine has passed.
   */
  drop(unsent: number, probe?: GoneProbe): void {
    if (this.#state !== "live") return;
    this.set(Math.max(unsent, (this.#bytes - this.#largest) / this.#ledger.limits.factor));
    this.#see(unsent);
    this.#state = "dropped";
    this.#until = this.#ledger.now() + this.#ledger.limits.quarantineMs;
    this.#probe = probe;
    this.#ledger.track(this);
  }

  /**
   * The connection's socket closed (or never opened). A live charge is freed
   * at once; a dropped one waits for its proof and quarantine.
   */
  release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#see(0); // its unsent bytes are the runtime's business now (still charged if dropped)
    if (this.#state === "live") this.#free();
    else if (this.#state === "dropped") {
      this.#ledger.lingering++;
      this.settle();
    }
  }

  /** Free a dropped charge when its quarantine is over and its socket is proven gone; whether it was. */
  settle(): boolean {
    if (this.#state !== "dropped") return this.#state === "released";
    if (this.#ledger.now() < this.#until) return false;
    const gone = this.#probe?.();
    if (gone === false || (gone === undefined && !this.#closed)) return false;
    this.#free();
    return true;
  }

  /** Free the charge whatever its state (the server stopped). */
  forget(): void {
    this.#see(0);
    this.#free();
  }

  // The socket's unsent bytes as last seen, in the ledger's open-socket sum.
  #see(unsent: number): void {
    this.#ledger.unsent += unsent - this.#unsent;
    this.#unsent = unsent;
  }

  #free(): void {
    if (this.#state === "released") return;
    if (this.#state === "dropped" && this.#closed) this.#ledger.lingering--;
    this.#state = "released";
    this.#entry.slots--;
    this.#entry.bytes -= this.#bytes;
    this.#bytes = 0;
    this.#ledger.freed(this, this.#entry);
  }
}

/**
 * Slots and estimated bytes charged per client address.
 *
 * @example A dropped connection stays charged through its quarantine
 * ```ts
 * import { ChargeLedger } from "./_charge.ts";
 * let now = 0;
 * const ledger = new ChargeLedger(
 *   { slots: 1, bytes: 100, quarantineMs: 60_000, factor: 2 },
 *   () => now,
 * );
 * const charge = ledger.open("203.0.113.9");
 * charge.drop(40, () => true); // the runtime says the socket is gone at once
 * charge.release();
 * if (ledger.admits("203.0.113.9")) throw new Error("still quarantined");
 * now = 60_000;
 * ledger.sweep();
 * if (!ledger.admits("203.0.113.9")) throw new Error("quarantine over, socket gone");
 * ```
 */
export class ChargeLedger {
  /** The limits of every address. */
  readonly limits: ChargeLimits;
  /** The clock (ms), replaceable in tests. */
  readonly now: () => number;
  /** Dropped connections whose socket the server has closed but which are still charged. */
  lingering = 0;
  /** Unsent bytes of the open sockets, as last seen (see the module's header). */
  unsent = 0;
  #addresses = new Map<string, Address>();
  #dropped = new Set<Charge>();

  /** A ledger with these per-address limits. */
  constructor(limits: ChargeLimits, now: () => number = () => performance.now()) {
    this.limits = limits;
    this.now = now;
  }

  /** Whether `address` may open one more connection: a slot free, and bytes left for one. */
  admits(address: string): boolean {
    const entry = this.#addresses.get(address);
    if (!entry) return true;
    return entry.slots < this.limits.slots && entry.bytes < this.limits.bytes;
  }

  /** Charge a new connection of `address` (call {@link ChargeLedger.admits} first). */
  open(address: string): Charge {
    let entry = this.#addresses.get(address);
    if (!entry) this.#addresses.set(address, entry = { slots: 0, bytes: 0 });
    entry.slots++;
    return new Charge(this, address, entry);
  }

  /** What `address` has charged now. */
  charged(address: string): { slots: number; bytes: number } {
    const entry = this.#addresses.get(address);
    return { slots: entry?.slots ?? 0, bytes: entry?.bytes ?? 0 };
  }

  /** Dropped connections still charged. */
  get dropped(): number {
    return this.#dropped.size;
  }

  /** Free the dropped charges that are settled; the addresses of those that were. Call it periodically. */
  sweep(): string[] {
    const freed: string[] = [];
    for (const charge of [...this.#dropped]) if (charge.settle()) freed.push(charge.address);
    return freed;
  }

  /** Free every charge (the server stopped). */
  clear(): void {
    for (const charge of [...this.#dropped]) charge.forget();
    this.#addresses.clear();
    this.lingering = 0;
    this.unsent = 0;
  }

  /** @internal A charge was dropped: settle it on sweeps. */
  track(charge: Charge): void {
    this.#dropped.add(charge);
  }

  /** @internal A charge was freed. */
  freed(charge: Charge, entry: Address): void {
    this.#dropped.delete(charge);
    if (entry.slots <= 0 && this.#addresses.get(charge.address) === entry) {
      this.#addresses.delete(charge.address);
    }
  }
}
