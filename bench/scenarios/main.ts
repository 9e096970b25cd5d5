// The main scenarios, run in one go on one server and one set of joined
// clients: handshake + join (128 at a time) and idle memory per connection,
// latency at 20 broadcasts/s, CPU per delivered frame at a fixed rate (median
// of several windows), the flood (delivered frames/s), at the client count
// chosen by --stall-clients the stalled reader, and last the same join once
// more on the warmed-up server (every client closed first).

import type { Options } from "../_options.ts";
import { memory } from "../_procfs.ts";
import { type ServerProc, sleep, type WorkerProc } from "../_procs.ts";
import { type Joined, type Measured, Session } from "../_session.ts";
import { median } from "../_stats.ts";
import { type StallResult, stallScenario } from "./stall.ts";

/** What the main scenarios measured at one client count. */
export interface MainResult {
  join: Joined;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  /** Server RSS growth per idle joined connection. */
  rssPerConnKiB: number;
  latency: Measured;
  cpu: Measured[];
  cpuPerFrameUs: number;
  /** Broadcasts/s of the CPU windows: `cpuFramesPerS / clients`, 1–1000. */
  cpuRate: number;
  flood: Measured;
  stall?: StallResult;
  /**
   * The join again, after every client closed: the handshake rate of a
   * warmed-up server (the median of `joinReps` rejoins by rate).
   */
  rejoin?: Joined;
  /** joins/s of every rejoin. */
  rejoinRates?: number[];
}

/** Joins `n` clients to `server` and runs every main scenario; closes the clients at the end. */
export async function mainScenarios(
  o: Options,
  server: ServerProc,
  workers: WorkerProc[],
  n: number,
): Promise<MainResult> {
  const s = new Session(server, workers);
  try {
    await sleep(o.smoke ? 100 : 500);
    const before = memory(server.pid).rss;
    const join = await s.join(n, 128);
    if (join.ok === 0) throw new Error(`no client could join: ${JSON.stringify(join.errors)}`);
    await sleep(o.smoke ? 100 : 1000);
    const after = memory(server.pid).rss;
    const latency = await s.fixed(Math.round(20 * o.latencyS), 20);
    const cpuRate = Math.max(1, Math.min(1000, Math.round(o.cpuFramesPerS / n)));
    const cpu: Measured[] = [];
    for (let i = 0; i < o.cpuReps; i++) {
      cpu.push(await s.fixed(Math.max(1, Math.round(cpuRate * o.cpuS)), cpuRate));
    }
    const flood = await s.flood(o.floodS, n);
    const result: MainResult = {
      join,
      rssBeforeKiB: before,
      rssAfterKiB: after,
      rssPerConnKiB: (after - before) / join.ok,
      latency,
      cpu,
      cpuPerFrameUs: median(cpu.map((c) => c.cpuPerFrameUs)),
      cpuRate,
      flood,
    };
    if (n === o.stallClients) result.stall = await stallScenario(o, s);
    const rejoins: Joined[] = [];
    for (let i = 0; i < o.joinReps; i++) {
      await s.closeAll();
      await sleep(o.smoke ? 100 : 1000);
      rejoins.push(await s.join(n, 128));
    }
    rejoins.sort((a, b) => a.joinsPerS - b.joinsPerS);
    result.rejoin = rejoins[Math.floor(rejoins.length / 2)];
    result.rejoinRates = rejoins.map((r) => r.joinsPerS);
    return result;
  } finally {
    await s.closeAll();
  }
}
