/**
 * Counters the server keeps for `GET /metrics`, rendered in the Prometheus
 * text exposition format. Plain numbers, bumped inline: no allocation on the
 * broadcast path.
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
}

/** The server's counters (internal); render them with {@link Metrics.render}. */
export class Metrics {
  /** WebSocket connections accepted since start. */
  connectionsTotal = 0;
  /** Upgrades refused by a limit or the origin check, by reason. */
  rejected: Record<string, number> = {};
  /** Frames received from clients. */
  framesIn = 0;
  /** Frames sent to clients (each delivery of a broadcast counts). */
  framesOut = 0;
  /** Broadcasts by type. */
  broadcasts: Record<string, number> = { message: 0, presence: 0, "update-clientid": 0 };
  /** Error frames sent to clients. */
  errorFrames = 0;
  /** Connections dropped because they stopped reading. */
  droppedSlowClients = 0;
  /** Connections closed for abuse (rate, size, join timeout). */
  closedForAbuse = 0;
  /** Successful joins. */
  joins = 0;
  /** Dropped connections still charged to their address after their socket closed (a gauge). */
  chargedDropped = 0;
  /** Per-callback calls, errors and total latency. */
  callbacks: Record<string, CallbackStats> = {};

  /** A copy for readers outside the server. */
  snapshot(): MetricsSnapshot {
    return structuredClone({
      connectionsTotal: this.connectionsTotal,
      rejected: this.rejected,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      broadcasts: this.broadcasts,
      errorFrames: this.errorFrames,
      droppedSlowClients: this.droppedSlowClients,
      closedForAbuse: this.closedForAbuse,
      joins: this.joins,
      callbacks: this.callbacks,
    });
  }

  /** Record one callback call. */
  observeCallback(name: string, seconds: number, failed: boolean): void {
    const s = this.callbacks[name] ??= { calls: 0, errors: 0, seconds: 0 };
    s.calls++;
    s.seconds += seconds;
    if (failed) s.errors++;
  }

  /** Count one refused upgrade. */
  reject(reason: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  /**
   * Render in Prometheus text format. The gauges are read from the server at
   * render time: `open` connections, and `joined` (Discord id → joined connections).
   */
  render(open: number, joined: ReadonlyMap<string, number>, draining: boolean): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      type: "counter" | "gauge",
      help: string,
      samples: Array<[Record<string, string> | null, number]>,
    ) => {
      lines.push(`# HELP dback_${name} ${help}`, `# TYPE dback_${name} ${type}`);
      for (const [labels, value] of samples) {
        const l = labels
          ? `{${
            Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "_")}"`).join(",")
          }}`
          : "";
        lines.push(`dback_${name}${l} ${value}`);
      }
    };
    metric("up", "gauge", "1 while serving, 0 while draining.", [[null, draining ? 0 : 1]]);
    metric("connections", "gauge", "Open WebSocket connections.", [[null, open]]);
    metric(
      "dropped_charged_connections",
      "gauge",
      "Dropped connections still charged to their address (socket not proven gone, or quarantined).",
      [[null, this.chargedDropped]],
    );
    metric("connections_total", "counter", "WebSocket connections accepted.", [[
      null,
      this.connectionsTotal,
    ]]);
    metric(
      "joined_connections",
      "gauge",
      "Connections joined, per Discord server id.",
      [...joined].map(([server, n]) => [{ server }, n]),
    );
    metric(
      "rejected_upgrades_total",
      "counter",
      "WebSocket upgrades refused, by reason.",
      Object.entries(this.rejected).map(([reason, n]) => [{ reason }, n]),
    );
    metric("frames_in_total", "counter", "Frames received from clients.", [[null, this.framesIn]]);
    metric("frames_out_total", "counter", "Frames sent to clients.", [[null, this.framesOut]]);
    metric(
      "broadcasts_total",
      "counter",
      "Broadcasts, by frame type.",
      Object.entries(this.broadcasts).map(([type, n]) => [{ type }, n]),
    );
    metric("error_frames_total", "counter", "Error frames sent.", [[null, this.errorFrames]]);
    metric("joins_total", "counter", "Successful server joins.", [[null, this.joins]]);
    metric("dropped_slow_clients_total", "counter", "Clients dropped for not reading.", [[
      null,
      this.droppedSlowClients,
    ]]);
    metric("closed_for_abuse_total", "counter", "Clients closed for size, rate or join timeout.", [[
      null,
      this.closedForAbuse,
    ]]);
    const cbs = Object.entries(this.callbacks);
    metric(
      "callback_calls_total",
      "counter",
      "Callback calls.",
      cbs.map(([callback, s]) => [{ callback }, s.calls]),
    );
    metric(
      "callback_errors_total",
      "counter",
      "Callbacks that threw, timed out or returned the wrong shape.",
      cbs.map(([callback, s]) => [{ callback }, s.errors]),
    );
    metric(
      "callback_seconds_total",
      "counter",
      "Time spent in callbacks (divide by calls for the mean).",
      cbs.map(([callback, s]) => [{ callback }, s.seconds]),
    );
    return lines.join("\n") + "\n";
  }
}
