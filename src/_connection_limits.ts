/**
 * What one connection may do (internal): the per-connection limits the server derives from its
 * options, and the per-IP budget a connection shares with the other connections of its address.
 * Kept apart from `_connection.ts`, which enforces them as the bytes arrive.
 *
 * @module
 */
/** Per-connection limits. */
export interface ConnectionLimits {
  /** Largest accepted inbound frame, in bytes; larger closes with 1009. */
  maxFrameBytes: number;
  /** Sustained inbound frames per second. */
  ratePerSecond: number;
  /** Frames allowed in a burst above the rate. */
  rateBurst: number;
  /** Frames refused for rate (own or the IP's) before the connection is closed with 1008. */
  rateStrikes: number;
  /** Milliseconds a connection may stay open without joining; 0 disables. */
  joinTimeoutMs: number;
  /** Milliseconds an upgraded socket may take to open before it is forgotten. */
  openTimeoutMs: number;
  /** Unsent bytes above which a client counts as behind; behind for `slowGraceMs` means dropped. */
  highWaterBytes: number;
  /** How long a client may stay above `highWaterBytes` (bursts are fine, stalls are not). */
  slowGraceMs: number;
  /** Unsent bytes no send may exceed: the per-connection memory bound. */
  maxBufferedBytes: number;
  /**
   * The slowest a `server-join` may be read: its bytes are not "behind" for
   * `slowGraceMs` plus its size at this rate; a join still unsent then drops the client.
   */
  joinMinBytesPerSecond: number;
  /** Bytes of memory the runtime holds per unsent byte (see `_charge.ts`). */
  memoryFactor?: number;
}

/** What one client IP may spend, shared by all its connections. */
export interface IpBudget {
  /** Take one frame of `bytes` from the IP's per-second budget (`now`: the `performance.now()` clock); `false` when it is spent. */
  take(bytes: number, now?: number): boolean;
  /** Take one join from the connection's and the IP's join budgets; `false` when either is spent. */
  join(now?: number): boolean;
  /** Take one Discord login check (each may cost a request to Discord); `false` when spent. */
  login(): boolean;
  /** Let go of the connection's own join bucket if it is full again (a new one is the same). */
  settle(now: number): void;
}
