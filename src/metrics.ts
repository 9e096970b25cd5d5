/**
 * What `WebSocketServer.metrics` reports: the public shape of the counters
 * behind `GET /metrics` (kept and rendered by `_metrics.ts`).
 *
 * @module
 */

/**
 * Latency and error tally for one callback.
 *
 * @example
 * ```ts
 * import type { CallbackStats } from "@dzone/dback";
 * const s: CallbackStats = { calls: 4, errors: 1, seconds: 0.2 };
 * if (s.seconds / s.calls !== 0.05) throw new Error("unexpected");
 * ```
 */
export interface CallbackStats {
  /** Calls made. */
  calls: number;
  /** Calls that threw, timed out or returned the wrong shape. */
  errors: number;
  /** Total seconds spent waiting for the callback. */
  seconds: number;
}

/**
 * A copy of the server's counters at one moment.
 *
 * @example
 * ```ts
 * import { type MetricsSnapshot, WebSocketServer } from "@dzone/dback";
 * const server = new WebSocketServer();
 * const m: MetricsSnapshot = server.metrics;
 * if (m.joins !== 0 || m.framesOut !== 0) throw new Error("unexpected");
 * ```
 */
export interface MetricsSnapshot {
  /** WebSocket connections accepted since start. */
  readonly connectionsTotal: number;
  /** Upgrades refused by a limit or the origin check, by reason. */
  readonly rejected: Readonly<Record<string, number>>;
  /** Frames received from clients. */
  readonly framesIn: number;
  /** Frames sent to clients (each delivery of a broadcast counts). */
  readonly framesOut: number;
  /** Broadcasts by type. */
  readonly broadcasts: Readonly<Record<string, number>>;
  /** Error frames sent to clients. */
  readonly errorFrames: number;
  /** Connections dropped because they stopped reading. */
  readonly droppedSlowClients: number;
  /** Connections closed for abuse (rate, size, join timeout). */
  readonly closedForAbuse: number;
  /** Successful joins. */
  readonly joins: number;
  /** Per-callback calls, errors and total latency. */
  readonly callbacks: Readonly<Record<string, CallbackStats>>;
  /** Joins waiting for the outbound budget now. */
  readonly joinQueueLength: number;
  /** Unsent bytes of all sockets, as last measured (each join decision and every read of the metrics). */
  readonly unsentBytes: number;
  /** Joins that went through the outbound budget. */
  readonly joinWaitCount: number;
  /** Their total wait, in seconds. */
  readonly joinWaitSeconds: number;
  /** Their waits per bucket (upper bounds 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60 s, then above). */
  readonly joinWaitBuckets: readonly number[];
  /** Joins refused because the join queue was full. */
  readonly joinsRefusedBusy: number;
  /** Joins refused for the join budget (connection or IP). */
  readonly joinsRefusedBudget: number;
}
