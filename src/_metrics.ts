/**
 * Counters the server keeps for `GET /metrics` (internal), rendered in the
 * Prometheus text exposition format. Plain numbers, bumped inline: no
 * allocation on the broadcast path.
 *
 * @module
 */
import { EVENT_TYPES, EVENTS } from "./events.ts";
import type { CallbackStats, MetricsSnapshot } from "./metrics.ts";

/** Upper bounds (seconds) of the join wait-time histogram buckets. */
export const JOIN_WAIT_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60];

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
  /** Events published, by the event table's metric label (every type starts at 0). */
  broadcasts: Record<string, number> = Object.fromEntries(
    EVENT_TYPES.map((type) => [EVENTS[type].metric, 0]),
  );
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
  /** Joins waiting for the outbound budget now. */
  joinQueueLength = 0;
  /** Unsent bytes of all sockets, as last measured. */
  unsentBytes = 0;
  /** Joins that went through the outbound budget. */
  joinWaitCount = 0;
  /** Their total wait, in seconds. */
  joinWaitSeconds = 0;
  /** Their waits per bucket of {@link JOIN_WAIT_BUCKETS}, plus one above the largest. */
  joinWaitBuckets: number[] = new Array(JOIN_WAIT_BUCKETS.length + 1).fill(0);
  /** Joins refused because the join queue was full. */
  joinsRefusedBusy = 0;
  /** Joins refused for the join budget. */
  joinsRefusedBudget = 0;
  /** Frames the `hideOfflineAbove` policy kept from a room, by type (one per event, not per viewer). */
  framesWithheld: { presence: number; message: number } = { presence: 0, message: 0 };

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
      joinQueueLength: this.joinQueueLength,
      unsentBytes: this.unsentBytes,
      joinWaitCount: this.joinWaitCount,
      joinWaitSeconds: this.joinWaitSeconds,
      joinWaitBuckets: this.joinWaitBuckets,
      joinsRefusedBusy: this.joinsRefusedBusy,
      joinsRefusedBudget: this.joinsRefusedBudget,
      framesWithheld: this.framesWithheld,
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
    metric(
      "frames_withheld_total",
      "counter",
      "Frames hideOfflineAbove kept from a room (hidden members' presence, their chat), by type; one per event.",
      [
        [{ type: "presence" }, this.framesWithheld.presence],
        [{ type: "message" }, this.framesWithheld.message],
      ],
    );
    metric("joins_total", "counter", "Successful server joins.", [[null, this.joins]]);
    metric("dropped_slow_clients_total", "counter", "Clients dropped for not reading.", [[
      null,
      this.droppedSlowClients,
    ]]);
    metric("closed_for_abuse_total", "counter", "Clients closed for size, rate or join timeout.", [[
      null,
      this.closedForAbuse,
    ]]);
    metric("join_queue_length", "gauge", "Joins waiting for the outbound budget.", [[
      null,
      this.joinQueueLength,
    ]]);
    metric("unsent_bytes", "gauge", "Unsent bytes of all sockets.", [[null, this.unsentBytes]]);
    lines.push(
      "# HELP dback_join_wait_seconds Time joins waited for the outbound budget.",
      "# TYPE dback_join_wait_seconds histogram",
    );
    let cumulative = 0;
    JOIN_WAIT_BUCKETS.forEach((le, i) => {
      cumulative += this.joinWaitBuckets[i];
      lines.push(`dback_join_wait_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    lines.push(
      `dback_join_wait_seconds_bucket{le="+Inf"} ${this.joinWaitCount}`,
      `dback_join_wait_seconds_sum ${this.joinWaitSeconds}`,
      `dback_join_wait_seconds_count ${this.joinWaitCount}`,
    );
    metric("joins_refused_total", "counter", "Joins refused, by reason.", [
      [{ reason: "queue_full" }, this.joinsRefusedBusy],
      [{ reason: "join_budget" }, this.joinsRefusedBudget],
    ]);
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
