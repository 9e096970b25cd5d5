// Where a server's CPU per delivered frame goes, from the fixed-rate CPU windows of
// bench/run.ts result files: the main thread's user and kernel time, the JIT compiler
// threads, the garbage collector's threads and the rest, in µs per delivered frame over
// every window of every run (CPU summed, divided by frames summed), dback beside the
// bare peer of its runtime. Files written before the windows recorded the split
// (2026-12-05, 07:00 UTC) have nothing to show. Print it with
// `deno run -A bench/run.ts --threads FILE [FILE…]`.

import type { ThreadSplit } from "./_procfs.ts";
import { NAMES, PEER_TARGETS } from "./_peer_table.ts";

/** The parts of a result row this table reads. */
export interface ThreadRow {
  impl: string;
  n: number;
  main?: { cpu: Array<{ frames: number; serverCpuS: number; serverThreads?: ThreadSplit }> };
}

/** µs per delivered frame, by kind of thread, of one server at one client count. */
export interface FrameSplit {
  windows: number;
  frames: number;
  total: number;
  mainUser: number;
  mainSys: number;
  jit: number;
  gc: number;
  other: number;
}

/** Sums the CPU windows of `rows` (one server, one client count) that carry the split; null when none does. */
export function frameSplit(rows: ThreadRow[]): FrameSplit | null {
  let windows = 0, frames = 0, total = 0, main = 0, user = 0, sys = 0, jit = 0, gc = 0, other = 0;
  for (const r of rows) {
    for (const w of r.main?.cpu ?? []) {
      const t = w.serverThreads;
      if (!t || w.frames <= 0) continue;
      windows++;
      frames += w.frames;
      total += w.serverCpuS;
      main += t.mainS;
      user += t.mainUserS;
      sys += t.mainSysS;
      jit += t.jitS;
      gc += t.gcS;
      other += t.otherS;
    }
  }
  if (windows === 0) return null;
  // The user/kernel split is sampled at the kernel's tick: share the main thread's exact run time by it.
  const userShare = user + sys > 0 ? user / (user + sys) : 0;
  const us = (s: number) => s / frames * 1e6;
  return {
    windows,
    frames,
    total: us(total),
    mainUser: us(main * userShare),
    mainSys: us(main * (1 - userShare)),
    jit: us(jit),
    gc: us(gc),
    other: us(other),
  };
}

/**
 * The Markdown table: one line per server that has the split, dback servers
 * followed by their peer, per client count.
 *
 * @example
 * ```ts
 * import { threadTable } from "./_thread_table.ts";
 * const w = (mainUserS: number) => ({
 *   frames: 1000,
 *   serverCpuS: 0.006,
 *   serverThreads: { mainS: 0.005, mainUserS, mainSysS: 0.04 - mainUserS, jitS: 0.001, gcS: 0, otherS: 0 },
 * });
 * const md = threadTable([{ rows: [
 *   { impl: "dback-bun", n: 1000, main: { cpu: [w(0.01)] } },
 *   { impl: "bun", n: 1000, main: { cpu: [w(0.008)] } },
 * ] }]);
 * // 5 µs per frame on the main thread: a quarter of it user time for dback, a fifth for the peer.
 * if (!md.includes("| dback on Bun | 1 | 6.00 | 1.25 | 3.75 | 1.00 |")) throw new Error(md);
 * if (!md.includes("| bare `Bun.serve` | 1 | 6.00 | 1.00 | 4.00 | 1.00 |")) throw new Error(md);
 * ```
 */
export function threadTable(files: Array<{ rows: ThreadRow[] }>): string {
  const rows = files.flatMap((f) => f.rows);
  const order: string[] = [];
  for (const [impl, t] of Object.entries(PEER_TARGETS)) {
    if (!order.includes(impl)) order.push(impl);
    if (!order.includes(t.peer)) order.push(t.peer);
  }
  const f = (x: number) => x.toFixed(2);
  const out = [
    "| server | CPU windows | µs CPU/frame | main thread, user | main thread, kernel | JIT threads | GC threads | other threads |",
    "| --- | --: | --: | --: | --: | --: | --: | --: |",
  ];
  const counts = [...new Set(rows.map((r) => r.n))].sort((a, b) => a - b);
  for (const n of counts) {
    for (const impl of order) {
      const s = frameSplit(rows.filter((r) => r.impl === impl && r.n === n));
      if (!s) continue;
      out.push(
        `| ${NAMES[impl] ?? impl}${counts.length > 1 ? ` (${n})` : ""} | ${s.windows} | ${
          f(s.total)
        } | ${f(s.mainUser)} | ${f(s.mainSys)} | ${f(s.jit)} | ${f(s.gc)} | ${f(s.other)} |`,
      );
    }
  }
  return out.join("\n");
}
