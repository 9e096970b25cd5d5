/**
 * The cluster's lines for `GET /metrics`, in Prometheus text format.
 *
 * @module
 */
import type { ClusterStatus } from "./_cluster.ts";

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
