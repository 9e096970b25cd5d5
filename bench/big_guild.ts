// The `big-guild` benchmark: a 100,000-member guild with presence at 20/s, on Deno and on Bun
// (dback in a child process, tests/_fixtures/big_guild_server.ts; viewers on raw TCP sockets from
// distinct loopback addresses, tests/_fixtures/raw_viewer.ts, in this process).
//
//   deno run -A bench/big_guild.ts [--runtimes deno,bun] [--viewers 150] [--out FILE]
//   deno run -A bench/big_guild.ts --table FILE     # the Markdown table the docs embed
//
// Scenarios per runtime, each on a fresh server:
// - herd: `--viewers` viewers join at once: time until all have the whole join, their join
//   latency, the server's RSS before and at its peak, and how many were dropped;
// - churn: 5 connections from one address alternate `connect` between the big guild and a small
//   one, each as soon as the last answer came, for 20 s, while 10 viewers from other addresses
//   re-join the big guild once a second: bytes to the attacker, the others' re-join p50/p90
//   (and, measured first for 10 s, the same re-joins without the attacker);
// - join250k: one client joins a 250,000-member guild: whether it arrives whole, and how long.
// Writes one JSON file (machine, versions, date, every figure) for bench/results/.
import { parseArgs } from "node:util";
import { bigGuildTable } from "./_big_guild_table.ts";
import { memory, peakRss } from "./_procfs.ts";
import { machineInfo } from "./_procfs.ts";
import { BIG_GUILD_SHORT, SMALL_GUILD_SHORT } from "../tests/_fixtures/big_guild.ts";
import { GuildProcess } from "../tests/_fixtures/guild_process.ts";
import type { RuntimeName } from "../tests/_fixtures/runtimes.ts";
import { type RawFrame, RawViewer } from "../tests/_fixtures/raw_viewer.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    runtimes: { type: "string", default: "deno,bun" },
    viewers: { type: "string", default: "150" },
    "churn-seconds": { type: "string", default: "20" },
    out: { type: "string" },
    table: { type: "string" },
  },
});

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

async function herd(runtime: RuntimeName, n: number) {
  await using server = await GuildProcess.start(runtime, {
    members: 100_000,
    presencePerSecond: 20,
  });
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
  await using server = await GuildProcess.start(runtime, {
    members: 100_000,
    presencePerSecond: 20,
  });
  const warm = await RawViewer.connect(server.port, { localAddress: "127.0.1.250" });
  warm.connect(BIG_GUILD_SHORT);
  await warm.waitFor(answered);
  warm.destroy();
  const attacker = await Promise.all(
    [0, 1, 2, 3, 4].map(() => RawViewer.connect(server.port, { localAddress: "127.0.0.2" })),
  );
  const others = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) => RawViewer.connect(server.port, { localAddress: `127.0.4.${i + 1}` }),
    ),
  );
  // The same re-joins without the attacker first: what the machine gives them anyway.
  const baseline = await rejoinLoop(others, performance.now() + 10_000);
  const end = performance.now() + seconds * 1000;
  const received0 = attacker.reduce((n, a) => n + a.received, 0);
  let answers = { joins: 0, refused: 0 };
  const attack = attacker.map(async (a, k) => {
    for (let i = k; performance.now() < end && !a.isClosed; i++) {
      const from = a.frames.length;
      a.connect(i % 2 ? SMALL_GUILD_SHORT : BIG_GUILD_SHORT);
      const f = await a.waitFor(
        (f) => f.type === "server-join" || f.type === "error",
        from,
        Math.max(1, end - performance.now()),
      );
      if (f?.type === "server-join") answers.joins++;
      else if (f?.type === "error") answers.refused++;
    }
  });
  const [rejoins] = await Promise.all([rejoinLoop(others, end), ...attack]);
  const bytes = attacker.reduce((n, a) => n + a.received, 0) - received0;
  const m = await server.metrics();
  for (const v of [...attacker, ...others]) v.destroy();
  const result = {
    seconds,
    attackerBytes: bytes,
    attackerGB: round(bytes / 1e9, 2),
    attackerJoins: answers.joins,
    attackerRefused: answers.refused,
    baselineRejoins: baseline.length,
    baselineRejoinP50Ms: round(percentile(baseline, 50), 0),
    baselineRejoinP90Ms: round(percentile(baseline, 90), 0),
    othersRejoins: rejoins.length,
    othersRejoinP50Ms: round(percentile(rejoins, 50), 0),
    othersRejoinP90Ms: round(percentile(rejoins, 90), 0),
    refusedForBudget: m.joinsRefusedBudget,
  };
  answers = { joins: 0, refused: 0 };
  return result;
}

/** Each viewer re-joins the big guild once a second until `end`: the join latencies. */
async function rejoinLoop(viewers: RawViewer[], end: number): Promise<number[]> {
  const rejoins: number[] = [];
  await Promise.all(viewers.map(async (o) => {
    while (performance.now() < end && !o.isClosed) {
      const from = o.frames.length;
      const t = performance.now();
      o.connect(BIG_GUILD_SHORT);
      const f = await o.waitFor((f) => f.type === "server-join" || f.type === "error", from);
      if (f?.type === "server-join") rejoins.push(f.at - t);
      await sleep(1000);
    }
  }));
  return rejoins;
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
for (const runtime of runtimes) {
  console.error(`[${runtime}] herd of ${args.viewers}`);
  const h = await herd(runtime, Number(args.viewers));
  console.error(JSON.stringify(h));
  console.error(`[${runtime}] churn`);
  const c = await churn(runtime, Number(args["churn-seconds"]));
  console.error(JSON.stringify(c));
  console.error(`[${runtime}] 250k join`);
  const j = await join250k(runtime);
  console.error(JSON.stringify(j));
  results[runtime] = { herd: h, churn: c, join250k: j };
}
const report = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  command: `deno run -A bench/big_guild.ts ${Deno.args.join(" ")}`.trim(),
  note:
    "one run on a 2-core VM shared with other jobs; dback defaults (maxTotalBufferedBytes 1 GiB, join budgets 1/s burst 10 per connection, 2/s burst 30 per IP); 100,000-member guild (13.3 MB join) with presence at 20/s",
  machine: machineInfo({
    deno: `deno ${Deno.version.deno}`,
    bun: `bun ${await version("bun", ["--version"])}`,
  }, `deno ${Deno.version.deno} (raw TCP viewers, node:net, in the driver)`),
  results,
};
const text = JSON.stringify(report, null, 2) + "\n";
if (args.out) await Deno.writeTextFile(args.out, text);
else console.log(text);
