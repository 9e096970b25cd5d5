/**
 * The cluster's lines for `GET /metrics`, in Prometheus text format.
 *
 * @module
 */
/** What an instance reports about itself (rendered in `/metrics` and logs). */
export interface ClusterStatus {
  /** This instance's id in the cluster. */
  instanceId: string;
  /** Whether both Redis connections are up. */
  redisUp: boolean;
  /** `leader` while this instance holds the lease and runs the data source. */
  role: "leader" | "follower";
  /** The newest fencing epoch this instance knows (its own while leader). */
  epoch: number;
  /** The lease holder's token (`instance:epoch`) as last read, or `""`. */
  leader: string;
  /**
   * How far behind this instance is, seconds: the delay of the last event
   * applied while in step; while Redis is unreachable or a copy catches up,
   * the age of the newest event applied.
   */
  eventLagSeconds: number;
  /** Servers this instance keeps a local copy of. */
  rooms: number;
  /** Events published by this instance, by kind. */
  published: { source: number; library: number };
  /** Events dropped, by reason. */
  dropped: {
    /** Source events of an epoch older than the newest seen. */
    staleEpoch: number;
    /** Source events refused because the lease was no longer held. */
    fenced: number;
    /** Library broadcasts lost while Redis was down (queue full) or on a failed send. */
    library: number;
    /** Source events the publisher could not send because Redis was down (it steps down after its lease). */
    offline: number;
    /** Chat messages whose id was published already (replayed by Discord after a takeover). */
    duplicate?: number;
  };
  /** Times a local copy was reloaded from Redis after a gap, reconnect or new snapshot. */
  resyncs: number;
  /** Times a local copy caught up from its stream (events delivered late, none lost). */
  caughtUp?: number;
  /** Events a snapshot reload skipped because the stream no longer held them (chat among them is lost). */
  lost?: number;
  /** Times the watchdog restarted a data source that stayed silent while watching servers. */
  watchdogRestarts?: number;
}

/**
 * Render a cluster status as Prometheus lines (with HELP and TYPE), ready to
 * append to the server's `/metrics` body.
 *
 * @example
 * ```ts
 * import { renderClusterMetrics } from "@dzone/dback/redis";
 * const text = renderClusterMetrics({
 *   instanceId: "a", redisUp: true, role: "leader", epoch: 3, leader: "a:3",
 *   eventLagSeconds: 0.002, rooms: 1, published: { source: 5, library: 1 },
 *   dropped: { staleEpoch: 0, fenced: 0, library: 0, offline: 0 }, resyncs: 1,
 * });
 * if (!text.includes("dback_redis_up 1\n")) throw new Error("missing redis_up");
 * if (!text.includes("dback_cluster_epoch 3\n")) throw new Error("missing epoch");
 * ```
 */
export function renderClusterMetrics(s: ClusterStatus): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number, type = "gauge") => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  };
  gauge("dback_redis_up", "Whether this instance's Redis connections are up.", s.redisUp ? 1 : 0);
  gauge(
    "dback_cluster_leader",
    "Whether this instance holds the lease and runs the data source.",
    s.role === "leader" ? 1 : 0,
  );
  gauge("dback_cluster_epoch", "Newest fencing epoch this instance knows.", s.epoch);
  gauge(
    "dback_cluster_event_lag_seconds",
    "Delay between Redis publishing the last applied event and this instance applying it.",
    s.eventLagSeconds,
  );
  gauge("dback_cluster_rooms", "Servers this instance keeps a synced copy of.", s.rooms);
  gauge("dback_cluster_resyncs_total", "Local copies reloaded from Redis.", s.resyncs, "counter");
  lines.push(
    "# HELP dback_cluster_published_total Events this instance published through Redis.",
    "# TYPE dback_cluster_published_total counter",
    `dback_cluster_published_total{kind="source"} ${s.published.source}`,
    `dback_cluster_published_total{kind="library"} ${s.published.library}`,
    "# HELP dback_cluster_dropped_total Events dropped, by reason.",
    "# TYPE dback_cluster_dropped_total counter",
    `dback_cluster_dropped_total{reason="stale_epoch"} ${s.dropped.staleEpoch}`,
    `dback_cluster_dropped_total{reason="fenced"} ${s.dropped.fenced}`,
    `dback_cluster_dropped_total{reason="library"} ${s.dropped.library}`,
    `dback_cluster_dropped_total{reason="offline"} ${s.dropped.offline}`,
    `dback_cluster_dropped_total{reason="duplicate"} ${s.dropped.duplicate ?? 0}`,
  );
  gauge(
    "dback_cluster_caught_up_total",
    "Local copies brought up to date from their Redis stream after a gap (events delivered late).",
    s.caughtUp ?? 0,
    "counter",
  );
  gauge(
    "dback_cluster_events_lost_total",
    "Events skipped by a snapshot reload because the stream no longer held them (chat among them is lost).",
    s.lost ?? 0,
    "counter",
  );
  gauge(
    "dback_cluster_watchdog_restarts_total",
    "Times a silent data source was restarted while watching servers.",
    s.watchdogRestarts ?? 0,
    "counter",
  );
  return lines.join("\n") + "\n";
}
