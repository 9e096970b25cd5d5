// Scenario "join storm": a fresh server whose user map is large (--storm-users,
// a ~1 MB `server-join` frame at 10,000 users); every client connects and
// joins at once. Joins/s, time from TCP connect to the complete `server-join`,
// peak server memory and the load while it lasted.

import type { Options } from "../_options.ts";
import { type Load, loadMeter, memory, peakRss } from "../_procfs.ts";
import { type ServerProc, sleep, type WorkerProc } from "../_procs.ts";
import { type Joined, Session } from "../_session.ts";

/** What the join storm measured. */
export interface StormResult {
  users: number;
  join: Joined;
  rssBeforeKiB: number;
  rssPeakKiB: number;
  rssAfterKiB: number;
  load: Load;
}

/** Joins `n` clients at once to `server` (started with `o.stormUsers` users); closes them after. */
export async function stormScenario(
  o: Options,
  server: ServerProc,
  workers: WorkerProc[],
  n: number,
): Promise<StormResult> {
  const s = new Session(server, workers);
  try {
    await sleep(o.smoke ? 100 : 500);
    const m0 = memory(server.pid);
    const rss = peakRss(server.pid, 25);
    const meter = loadMeter(server.pid, workers.map((w) => w.pid));
    const join = await s.join(n, 0); // every client at once
    const { load } = meter(join.wallMs / 1000);
    rss.stop();
    const m1 = memory(server.pid);
    return {
      users: o.stormUsers,
      join,
      rssBeforeKiB: m0.rss,
      rssPeakKiB: Math.max(rss.peak(), m1.hwm, m1.rss),
      rssAfterKiB: m1.rss,
      load,
    };
  } finally {
    await s.closeAll();
  }
}
