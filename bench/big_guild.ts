// The `big-guild` benchmark: a 100,000-member guild with presence at 20/s, on Deno and on Bun
// (dback in a child process, tests/_fixtures/big_guild_server.ts; viewers on raw TCP sockets from
// distinct loopback addresses, tests/_fixtures/raw_viewer.ts, which find a frame's end from the
// WebSocket framing and never decode a `server-join`).
//
//   deno run -A bench/big_guild.ts [--runtimes deno,deno-node,bun] [--viewers 150] [--out FILE]
//   deno run -A bench/big_guild.ts --table FILE     # the Markdown table the docs embed
//   ... [--offline 0.8] [--hide-offline-above N]  # share of offline members; the policy on
//   deno run -A bench/big_guild.ts --hide-offline-table OFF ON   # the policy's comparison table
//
// Scenarios per runtime, each on a fresh server:
// - herd: `--viewers` viewers join at once: time until all have the whole join, their join
//   latency, the server's RSS before and at its peak, and how many were dropped;
// - churn: 5 connections from one address (in their own process, bench/_churn_attacker.ts)
//   alternate `connect` between the big guild and a small one, each as soon as the last answer
//   came, for 20 s, while 10 viewers from other addresses (in this process) re-join the big guild
//   once a second, each on its own phase (viewer i 100 ms after viewer i-1): bytes to the
//   attacker, the others' re-join p50/p90, the server's and this process's CPU; measured first
//   for 10 s without the attacker, and last with all ten re-joining at the same instant;
// - join250k: one client joins a 250,000-member guild: whether it arrives whole, and how long.
// Writes one JSON file (machine, versions, date, load average, every figure) for bench/results/.
import { parseArgs } from "node:util";
import { bigGuildTable } from "./_big_guild_table.ts";
import { hideOfflineTable } from "./_hide_offline_table.ts";
import { cpuSeconds, machineInfo, memory, peakRss } from "./_procfs.ts";
import { BIG_GUILD_SHORT } from "../tests/_fixtures/big_guild.ts";
import { GuildProcess } from "../tests/_fixtures/guild_process.ts";
import type { RuntimeName } from "../tests/_fixtures/runtimes.ts";
import { type RawFrame, RawViewer } from "../tests/_fixtures/raw_viewer.ts";

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  options: {
    runtimes: { type: "string", default: "deno,deno-node,bun" },
    viewers: { type: "string", default: "150" },
    "churn-seconds": { type: "string", default: "20" },
    "churn-runs": { type: "string", default: "1" },
    // The churn server's userDataCacheMs (default: the test server's 60 s; dback's own is 1 s).
    "user-data-cache-ms": { type: "string" },
    scenarios: { type: "string", default: "herd,churn,join250k" },
    // Share of the guild offline (default: every fourth member), and the server's
    // hideOfflineAbove (default: off) for herd and churn.
    offline: { type: "string" },
    "hide-offline-above": { type: "string" },
    out: { type: "string" },
    table: { type: "string" },
    "hide-offline-table": { type: "boolean" },
  },
  allowPositionals: true,
});

if (args["hide-offline-table"]) {
  const files = await Promise.all(
    positionals.map(async (f) => JSON.parse(await Deno.readTextFile(f))),
  );
  console.log(hideOfflineTable(files));
  Deno.exit(0);
}
if (args.table) {
  console.log(bigGuildTable(JSON.parse(await Deno.readTextFile(args.table))));
  Deno.exit(0);
}

const answered = (f: RawFrame) => f.type === "server-join" || f.type === "close";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)];
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const offline = args.offline === undefined ? undefined : Number(args.offline);
const hideOfflineAbove = args["hide-offline-above"] === undefined
  ? undefined
  : Number(args["hide-offline-above"]);
/** The big guild of herd and churn, with `--offline` and `--hide-offline-above` when given. */
function guild(options: Record<string, number> = {}) {
  return {
    members: 100_000,
    presencePerSecond: 20,
    ...(offline === undefined ? {} : { offline }),
    options: { ...options, ...(hideOfflineAbove === undefined ? {} : { hideOfflineAbove }) },
  };
}

async function herd(runtime: RuntimeName, n: number) {
  await using server = await GuildProcess.start(runtime, guild());
  // Build the map (the first join) before measuring.
  const warm = await RawViewer.connect(server.port, { localAddress: "127.0.1.250" });
  warm.connect(BIG_GUILD_SHORT);
  await warm.waitFor(answered);
  warm.destroy();
  await sleep(500);
  const before = memory(server.pid).rss;
  const viewers: RawViewer[] = [];
  for (let i = 0; i < n; i++) {
    viewers.push(
      await RawViewer.connect(server.port, {
        localAddress: `127.0.${2 + (i >> 8)}.${(i & 255) + 1}`,
      }),
    );
  }
  const peak = peakRss(server.pid, 50);
  const t0 = performance.now();
  for (const v of viewers) v.connect(BIG_GUILD_SHORT);
  const joins = await Promise.all(viewers.map((v) => v.waitFor(answered, 0, 600_000)));
  const allMs = performance.now() - t0;
  peak.stop();
  const ok = joins.filter((f) => f?.type === "server-join");
  const latencies = ok.map((f) => f!.at - t0);
  const m = await server.metrics();
  for (const v of viewers) v.destroy();
  return {
    viewers: n,
    joined: ok.length,
    joinBytes: ok[0]?.bytes ?? 0,
    allJoinedMs: round(allMs, 0),
    joinP50Ms: round(percentile(latencies, 50), 0),
    joinP90Ms: round(percentile(latencies, 90), 0),
    rssBeforeMiB: round(before / 1024),
    rssPeakMiB: round(peak.peak() / 1024),
    rssGrowthMiB: round((peak.peak() - before) / 1024),
    dropped: m.droppedSlowClients,
    closed: viewers.filter((v) => v.isClosed && v.closeCode !== undefined).length,
    joinsQueued: m.joinWaitBuckets.slice(1).reduce((a, b) => a + b, 0),
  };
}

async function churn(runtime: RuntimeName, seconds: number) {
  await using server = await GuildProcess.start(
    runtime,
    guild(
      args["user-data-cache-ms"] === undefined
        ? {}
        : { userDataCacheMs: Number(args["user-data-cache-ms"]) },
    ),
  );
  const warm = await RawViewer.connect(server.port, { localAddress: "127.0.1.250" });
  warm.connect(BIG_GUILD_SHORT);
  await warm.waitFor(answered);
  warm.destroy();
  await using attacker = await Attacker.start(server.port, seconds);
  const others = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) => RawViewer.connect(server.port, { localAddress: `127.0.4.${i + 1}` }),
    ),
  );
  // The same re-joins without the attacker first: what the machine gives them anyway.
  const baseline = await rejoinLoop(server.pid, others, 10_000, 100);
  const attack = attacker.go();
  const rejoins = await rejoinLoop(server.pid, others, seconds * 1000, 100);
  const a = await attack;
  // Then all ten at the same instant, once a second (no attacker): ten 13.3 MB joins at once.
  const lockstep = await rejoinLoop(server.pid, others, 10_000, 0);
  const m = await server.metrics();
  for (const v of others) v.destroy();
  return {
    seconds,
    attackerBytes: a.bytes,
    attackerGB: round(a.bytes / 1e9, 2),
    attackerJoins: a.joins,
    attackerRefused: a.refused,
    attackerCpuPct: round(a.cpuSeconds / seconds * 100, 0),
    rejoinSpreadMs: 100,
    baselineRejoins: baseline.latencies.length,
    baselineRejoinP50Ms: round(percentile(baseline.latencies, 50), 0),
    baselineRejoinP90Ms: round(percentile(baseline.latencies, 90), 0),
    othersRejoins: rejoins.latencies.length,
    othersRejoinP50Ms: round(percentile(rejoins.latencies, 50), 0),
    othersRejoinP90Ms: round(percentile(rejoins.latencies, 90), 0),
    othersFirstByteP90Ms: round(percentile(rejoins.firstByte, 90), 0),
    othersServerCpuPct: rejoins.serverCpuPct,
    othersDriverCpuPct: rejoins.driverCpuPct,
    othersBoxBusyPct: rejoins.boxBusyPct,
    lockstepRejoins: lockstep.latencies.length,
    lockstepRejoinP50Ms: round(percentile(lockstep.latencies, 50), 0),
    lockstepRejoinP90Ms: round(percentile(lockstep.latencies, 90), 0),
    refusedForBudget: m.joinsRefusedBudget,
  };
}

/**
 * Several churn runs (each on a fresh server) as one: every figure is the median of the runs, and
 * `runs` keeps each run's figures (this shared machine is noisy: one run says little).
 */
function medianRun(runs: Array<Record<string, number>>): Record<string, unknown> {
  if (runs.length === 1) return runs[0];
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(runs[0])) {
    out[k] = round(percentile(runs.map((r) => r[k]), 50), 2);
  }
  out.runs = runs;
  return out;
}

/** Busy and total jiffies of the whole machine (/proc/stat). */
function boxJiffies(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

/** The churn attacker in its own process (bench/_churn_attacker.ts), connected and waiting. */
class Attacker implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #lines: ReadableStreamDefaultReader<string>;
  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream())
      .pipeThrough(new TransformStream<string, string>(splitLines())).getReader();
  }

  static async start(port: number, seconds: number): Promise<Attacker> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_churn_attacker.ts", import.meta.url).pathname,
        JSON.stringify({ port, address: "127.0.0.2", connections: 5, seconds }),
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const a = new Attacker(child);
    if ((await a.#lines.read()).value !== "READY") throw new Error("attacker did not start");
    return a;
  }

  /** Start the attack; resolves with what the attacker got when it ends. */
  async go(): Promise<{ bytes: number; joins: number; refused: number; cpuSeconds: number }> {
    const w = this.#child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    w.releaseLock();
    const line = await this.#lines.read();
    return JSON.parse(line.value!);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#child.stdin.close().catch(() => {});
    try {
      this.#child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#child.status;
  }
}

function splitLines(): Transformer<string, string> {
  let buf = "";
  return {
    transform(chunk, out) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        out.enqueue(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
  };
}

/**
 * Each viewer re-joins the big guild once a second for `ms`, viewer `i` starting `i × spreadMs`
 * later (independent viewers; 0: all at the same instant): the join latencies (to the last byte
 * and to the first), and the server's and this process's CPU meanwhile (% of one core).
 */
async function rejoinLoop(serverPid: number, viewers: RawViewer[], ms: number, spreadMs: number) {
  const latencies: number[] = [];
  const firstByte: number[] = [];
  const t0 = performance.now();
  const end = t0 + ms;
  const cpu0 = [cpuSeconds(serverPid), cpuSeconds(Deno.pid)];
  const box0 = boxJiffies();
  await Promise.all(viewers.map(async (o, i) => {
    await sleep(i * spreadMs);
    while (performance.now() < end && !o.isClosed) {
      const from = o.frames.length;
      const t = performance.now();
      o.connect(BIG_GUILD_SHORT);
      const f = await o.waitFor((f) => f.type === "server-join" || f.type === "error", from);
      if (f?.type === "server-join") {
        latencies.push(f.at - t);
        firstByte.push(f.startAt - t);
      }
      await sleep(1000);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const pct = (s: number) => round(s / wall * 100, 0);
  const box1 = boxJiffies();
  return {
    boxBusyPct: round((box1.busy - box0.busy) / (box1.total - box0.total) * 100, 0),
    latencies,
    firstByte,
    serverCpuPct: pct(cpuSeconds(serverPid) - cpu0[0]),
    driverCpuPct: pct(cpuSeconds(Deno.pid) - cpu0[1]),
  };
}

async function join250k(runtime: RuntimeName) {
  await using server = await GuildProcess.start(runtime, { members: 250_000 });
  const viewer = await RawViewer.connect(server.port);
  const t0 = performance.now();
  viewer.connect(BIG_GUILD_SHORT);
  const f = await viewer.waitFor(answered, 0, 600_000);
  const ms = performance.now() - t0;
  await sleep(500);
  const open = !viewer.isClosed;
  viewer.destroy();
  return {
    ok: f?.type === "server-join" && open,
    joinBytes: f?.bytes ?? 0,
    joinMs: round(ms, 0),
    closeCode: viewer.closeCode ?? null,
  };
}

async function version(cmd: string, argv: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args: argv, stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).trim().split("\n")[0];
  } catch {
    return "unavailable";
  }
}

const runtimes = args.runtimes!.split(",") as RuntimeName[];
const results: Record<string, unknown> = {};
const loadAverage: Record<string, number[]> = {};
const load = () => Deno.loadavg().map((x) => round(x, 2));
for (const runtime of runtimes) {
  loadAverage[`${runtime} start`] = load();
  const only = args.scenarios!.split(",");
  const r: Record<string, unknown> = {};
  if (only.includes("herd")) {
    console.error(`[${runtime}] herd of ${args.viewers}`);
    r.herd = await herd(runtime, Number(args.viewers));
    console.error(JSON.stringify(r.herd));
  }
  if (only.includes("churn")) {
    console.error(`[${runtime}] churn`);
    const runs = [];
    for (let i = 0; i < Number(args["churn-runs"]); i++) {
      runs.push(await churn(runtime, Number(args["churn-seconds"])));
      console.error(JSON.stringify(runs.at(-1)));
    }
    r.churn = medianRun(runs);
    console.error(JSON.stringify(r.churn));
  }
  if (only.includes("join250k")) {
    console.error(`[${runtime}] 250k join`);
    r.join250k = await join250k(runtime);
    console.error(JSON.stringify(r.join250k));
  }
  results[runtime] = r;
  loadAverage[`${runtime} end`] = load();
}
const report = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  command: `deno run -A bench/big_guild.ts ${Deno.args.join(" ")}`.trim(),
  note:
    `on a 2-core VM shared with other jobs (load average below, 1/5/15 min); herd and join250k one run, churn ${
      args["churn-runs"]
    } run(s) (figures: the median, each run under runs); dback defaults (maxTotalBufferedBytes 1 GiB, join budgets 1/s burst 10 per connection, 2/s burst 30 per IP) except userDataCacheMs ${
      args["user-data-cache-ms"] ?? "60000 (the test server's)"
    } (churn; herd and join250k 60000); 100,000-member guild (13.3 MB join) with presence at 20/s${
      offline === undefined ? "" : `; ${offline * 100} % of its members offline`
    }${
      hideOfflineAbove === undefined ? "" : `; hideOfflineAbove ${hideOfflineAbove} (herd, churn)`
    }`,
  guild: { members: 100_000, offline: offline ?? 0.25, hideOfflineAbove: hideOfflineAbove ?? 0 },
  machine: machineInfo(
    {
      deno: `deno ${Deno.version.deno}`,
      bun: `bun ${await version("bun", ["--version"])}`,
    },
    `deno ${Deno.version.deno} (raw TCP viewers, node:net; the churn attacker in its own process)`,
  ),
  loadAverage,
  results,
};
const text = JSON.stringify(report, null, 2) + "\n";
if (args.out) await Deno.writeTextFile(args.out, text);
else console.log(text);
