// Scenario "stalled reader": with the clients of the main scenarios joined,
// 25 broadcasts/s of 8 KiB for a baseline window, then one more client joins
// and stops reading while the same load runs on: the others' latency, server
// memory, and whether (and when) the server dropped the stalled client.

import type { Options } from "../_options.ts";
import { type Event, sleep } from "../_procs.ts";
import type { Measured, Session } from "../_session.ts";

/** What the stalled-reader scenario measured. */
export interface StallResult {
  baseline: Measured;
  stalled: Measured;
  stalledJoined: boolean;
  /** The stalled client's fate as the worker saw it (`closeCodes`). */
  drain: Event;
  /** dback's `dback_dropped_slow_clients_total`, null for servers without /metrics. */
  droppedSlowClients: number | null;
  /** Seconds from the stall to the first drop seen in /metrics. */
  droppedAfterS: number | null;
}

const RATE = 25;
const PAD = 8192;

/** dback's count of clients dropped as too slow, or null when the server has no such metric. */
async function droppedSlowClients(port: number): Promise<number | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await r.text();
    const m = /^dback_dropped_slow_clients_total (\d+)/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Runs the scenario on a session whose clients are already joined. */
export async function stallScenario(o: Options, s: Session): Promise<StallResult> {
  const port = s.server.port;
  const baseline = await s.fixed(RATE * o.stallBaseS, RATE, PAD);
  const sj = await s.join(1, 1, true, s.workers[0]);
  const stalledAt = performance.now();
  let droppedAfterS: number | null = null;
  let polling = true;
  const poll = (async () => {
    while (polling && droppedAfterS === null) {
      await sleep(500);
      const d = await droppedSlowClients(port);
      if (d === null) return; // not dback: no /metrics
      if (d > 0) droppedAfterS = (performance.now() - stalledAt) / 1000;
    }
  })();
  const stalled = await s.fixed(RATE * o.stallS, RATE, PAD);
  polling = false;
  await poll;
  return {
    baseline,
    stalled,
    stalledJoined: sj.ok === 1,
    drain: await s.drainStalled(s.workers[0], 3000),
    droppedSlowClients: await droppedSlowClients(port),
    droppedAfterS,
  };
}
