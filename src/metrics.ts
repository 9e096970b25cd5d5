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
 * import { type CallbackStats, WebSocketServer } from "@dzone/dback";
 * let n = 0;
 * const staticRequest = () => {
 *   if (++n === 2) throw new Error("boom");
 *   return null;
 * };
 * await using server = new WebSocketServer({ staticDir: false, logLevel: "silent", callbacks: { staticRequest } });
 * await server.start({ listen: false });
 * for (let i = 0; i < 3; i++) await (await server.fetch(new Request("http://dzone.local/x"))).text();
 * const s: CallbackStats = server.metrics.callbacks.staticRequest;
 * if (s.calls !== 3 || s.errors !== 1 || !(s.seconds >= 0)) throw new Error(JSON.stringify(s));
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
 * const server = new WebSocketServer({ logLevel: "silent" });
 * server.broadcastMessage({ server: "1", uid: "2", message: "hi", channel: "3" });
 * const m: MetricsSnapshot = server.metrics;
 * if (m.broadcasts.message !== 1 || m.broadcasts.presence !== 0) throw new Error("by type");
 * server.broadcastMessage({ server: "1", uid: "2", message: "again", channel: "3" });
 * if (m.broadcasts.message !== 1) throw new Error("a snapshot does not change afterwards");
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
  /**
   * Frames the `hideOfflineAbove` policy kept from a server's viewers, by type: presence changes
   * of members who stay hidden, chat from hidden members. One per event, whatever the room's size.
   */
  readonly framesWithheld: Readonly<{ presence: number; message: number }>;
}
