// The benchmark driver: starts each server under test in its own process
// (_targets.ts, _procs.ts), spreads the clients over several load-generator
// processes (loadgen/worker.ts), runs the scenarios (scenarios/) while reading
// CPU and memory from /proc (_procfs.ts), and prints one table per scenario
// with ratios against the raw Deno loop (report.ts). JSON and Markdown go to
// out/bench/.
//
//   bash bench/bench.sh                       # full run (what `deno task bench` does)
//   deno run -A bench/run.ts --smoke          # ~5 s end-to-end check: dback, raw-deno, dback-bun, dback-node
//   deno run -A bench/run.ts --servers dback,raw-deno --clients 1000
//   deno run -A bench/run.ts --servers dback,raw-deno --clients 1000 --runs 2 \
//     --out bench/results/NAME.json           # a committable result file
//   deno run -A bench/run.ts --table FILE…    # the peers table the docs embed
//   deno run -A bench/run.ts --report FILE    # every table of one result file
//   deno run -A bench/run.ts --threads FILE…  # CPU per frame by kind of thread
//
// Options: --smoke, --servers a,b, --clients 100,1000,5000, --workers N,
// --out DIR or FILE.json, --runs N (interleaved), --note TEXT (stored in the
// file), --stall-clients N (the client count that gets the stalled-reader
// scenario; 0 = none), --storm-users N, --quick (shorter windows), --warmup N
// (joins of the generators against a throwaway instance of each server before
// the first run; 2000, 0 with --smoke).
// Exit code 1 when a required server (dback, raw-deno) did not complete.

import { type Options, parseOptions } from "./_options.ts";
import { ROOT } from "./_paths.ts";
import { machineInfo } from "./_procfs.ts";
import { ServerProc, WorkerProc } from "./_procs.ts";
import { TARGETS } from "./_targets.ts";
import { PEER_TARGETS, peerTable } from "./_peer_table.ts";
import { threadTable } from "./_thread_table.ts";
import { f, render, type Row, save } from "./report.ts";
import { Session } from "./_session.ts";
import { mainScenarios } from "./scenarios/main.ts";
import { stormScenario } from "./scenarios/storm.ts";

/** Runs every scenario of one server at `n` clients into `row` (a fresh server for the storm). */
async function measureRow(
  o: Options,
  workers: WorkerProc[],
  row: Row,
): Promise<void> {
  const srv = await ServerProc.start(row.impl, o.idleUsers);
  if ("unavailable" in srv) {
    row.unavailable = srv.unavailable;
    return;
  }
  try {
    row.main = await mainScenarios(o, srv, workers, row.n);
  } finally {
    await srv.stop();
  }
  const storm = await ServerProc.start(row.impl, o.stormUsers);
  if ("unavailable" in storm) {
    row.error = `storm server: ${storm.unavailable}`;
    return;
  }
  try {
    row.storm = await stormScenario(o, storm, workers, row.n);
  } finally {
    await storm.stop();
  }
}

/**
 * Warms the load generators up before anything is measured: every server in
 * turn, a throwaway instance of it, joined by `o.warmupJoins` clients in
 * rounds of 1,000 (128 at a time per generator), then stopped. Without it the
 * first server of run 1 meets generator processes whose own code is still
 * being compiled, and its join rate alone is lowered (in every interleaved set
 * of 2026-12-05 the first-listed server's run-1 join rate was its lowest).
 * Every server gets the same; the measured servers are fresh processes.
 */
async function warmGenerators(o: Options, workers: WorkerProc[]): Promise<void> {
  if (o.warmupJoins === 0) return;
  for (const impl of o.servers) {
    const srv = await ServerProc.start(impl, o.idleUsers);
    if ("unavailable" in srv) continue;
    const s = new Session(srv, workers);
    try {
      for (let left = o.warmupJoins; left > 0; left -= 1000) {
        await s.join(Math.min(1000, left), 128);
        await s.closeAll();
      }
    } catch {
      // A server that fails here fails (and is reported) in its measured runs.
    } finally {
      await s.closeAll().catch(() => {});
      await srv.stop();
    }
  }
}

function summary(row: Row): string {
  const m = row.main;
  if (row.unavailable) return `unavailable (${row.unavailable})`;
  if (row.error) return `ERROR ${row.error}`;
  return `${f(m?.cpuPerFrameUs ?? NaN, 2)} µs/frame, p99 ${
    f(m?.latency.latency.p99 ?? NaN, 2)
  } ms, flood ${f(m?.flood.framesPerS ?? NaN, 0)} delivered frames/s, storm p99 ${
    f(row.storm?.join.p99 ?? NaN, 0)
  } ms`;
}

/** A required server that did not complete every scenario (or delivered nothing) fails the run. */
function failedRow(row: Row): boolean {
  if (!TARGETS[row.impl].required) return false;
  if (row.error || row.unavailable) return true;
  return !!row.main && (row.main.latency.frames === 0 || row.main.flood.frames === 0);
}

/** The checked-out commit, with "+changes" when the tree differs from it. */
function commit(): string {
  const git = (...args: string[]) =>
    new TextDecoder().decode(
      new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" }).outputSync()
        .stdout,
    ).trim();
  try {
    const head = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") ? `${head}+changes` : head;
  } catch {
    return "unknown";
  }
}

/** The load average (1, 5, 15 minutes), to 2 decimals. */
const loadAverage = () => Deno.loadavg().map((x) => Math.round(x * 100) / 100);
const load1 = () => loadAverage()[0];

async function main(): Promise<number> {
  if (Deno.args[0] === "--report") {
    // Every table of one result file: what the docs embed between `<!-- bench-run: FILE -->`.
    const file = JSON.parse(await Deno.readTextFile(Deno.args[1]));
    console.log(render({ runs: 1, ...file.options }, file.rows).md.trim());
    return 0;
  }
  // Tables of committed result files, printed without a run.
  const tables: Record<string, (files: never[]) => string> = {
    "--threads": threadTable,
    "--table": peerTable,
  };
  const table = tables[Deno.args[0]];
  if (table) {
    const files = await Promise.all(
      Deno.args.slice(1).map(async (file) => JSON.parse(await Deno.readTextFile(file))),
    );
    if (!files.length) throw new Error(`${Deno.args[0]} FILE…: which results files?`);
    console.log(table(files as never[]));
    return 0;
  }
  let o: ReturnType<typeof parseOptions>;
  try {
    o = parseOptions(Deno.args);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  const started = performance.now();
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const measured = commit(); // the code measured, before anything is edited during the run
  const loadStart = loadAverage();
  const info = machineInfo(
    Object.fromEntries(o.servers.map((s) => [s, TARGETS[s].version()])),
    `${o.workers} × deno ${Deno.version.deno} (raw TCP WebSocket clients)`,
  );
  console.log(
    `dback benchmark${o.smoke ? " (smoke)" : ""}: ${info.nproc} cores, ${info.cpu}; ` +
      `servers ${o.servers.join(", ")}; clients ${o.clients.join(", ")}; ` +
      `${o.workers} generator processes`,
  );
  console.log("load column: server / busiest generator process (% of one core) / whole box (%)");
  const workers = Array.from({ length: o.workers }, () => new WorkerProc());
  const rows: Row[] = [];
  try {
    await Promise.all(workers.map((w) => w.next("ready", 30_000)));
    await warmGenerators(o, workers);
    for (const n of o.clients) {
      for (let run = 1; run <= o.runs; run++) {
        // Every other run in reverse (A B, B A, A B, ...): neither server always runs first or
        // always follows the same one, so drift over a set and order effects fall on both.
        const order = run % 2 === 1 ? o.servers : [...o.servers].reverse();
        for (const impl of order) {
          const row: Row = { impl, n, run, loadAvg1: load1() };
          rows.push(row);
          const t = performance.now();
          try {
            await measureRow(o, workers, row);
          } catch (err) {
            row.error = err instanceof Error ? err.message : String(err);
          }
          console.log(
            `  ${impl} @ ${n}${o.runs > 1 ? ` run ${run}` : ""} (load ${row.loadAvg1}): ${
              summary(row)
            } (${f((performance.now() - t) / 1000, 1)} s)`,
          );
        }
      }
    }
  } finally {
    await Promise.all(workers.map((w) => w.exit()));
  }
  const { text, md } = render(o, rows);
  console.log(text);
  if (rows.some((r) => r.impl in PEER_TARGETS)) console.log(`\n${peerTable([{ rows }])}`);
  const file = await save(o, info, rows, md, {
    date,
    args: Deno.args,
    loadAverage: { start: loadStart, end: loadAverage() },
    commit: measured,
  });
  console.log(`\nsaved ${file} (${f((performance.now() - started) / 1000, 1)} s total)`);
  const dbackFrames = rows.filter((r) => r.impl === "dback").reduce(
    (a, r) => a + (r.main ? r.main.latency.frames + r.main.flood.frames : 0),
    0,
  );
  console.log(`dback delivered frames: ${dbackFrames}`);
  const failed = rows.some(failedRow);
  if (failed) console.log("FAILED: dback or raw-deno did not complete every scenario");
  return failed ? 1 : 0;
}

Deno.exit(await main());
