// The per-address memory bound, measured: the attack of the memory-bound test (32 non-reading
// sockets from one address on a 100,000-member guild, re-sending `connect` every 0.5 s and
// replaced whenever the server admits more, old sockets kept open, unread;
// tests/_fixtures/memory_attack.ts) against a server in a child process on each runtime
// (tests/_fixtures/guild_process.ts), with the defaults the bound is stated for
// (maxConnectionsPerIp 32, maxBufferedBytes 16 MiB). Two cases, as the test runs them: with
// presence every 100 ms, the attack for 30 s and 20 s holding every socket open, on every runtime
// at once; then a quiet guild, the attack for 30 s, every runtime at once. Per runtime and case:
// the server's RSS idle and after its first join (one reading client joined and left), the peak
// RSS growth over each, as sampled (every 100 ms and after each round) and exact (the kernel's
// high-water mark, VmHWM, reset when the attack starts), sockets dropped and admitted.
//
//   deno run -A bench/memory_bound.ts [--runtimes deno,deno-node,bun,node] [--out FILE]
//   deno run -A bench/memory_bound.ts --root DIR [--build TEXT] [--out FILE]  # another checkout's server
//   deno run -A bench/memory_bound.ts --table FILE [BEFORE]   # the Markdown table the docs embed
import { parseArgs } from "node:util";
import { machineInfo } from "./_procfs.ts";
import { type MemoryBoundRun, memoryBoundTable } from "./_memory_bound_table.ts";
import { GuildProcess } from "../tests/_fixtures/guild_process.ts";
import { slowReaders, warmUp } from "../tests/_fixtures/memory_attack.ts";
import { ensureNode, ROOT, type RuntimeName } from "../tests/_fixtures/runtimes.ts";

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  options: {
    runtimes: { type: "string", default: "deno,deno-node,bun,node" },
    root: { type: "string" },
    build: { type: "string" },
    out: { type: "string" },
    table: { type: "string" },
  },
  allowPositionals: true,
});

if (args.table) {
  const files = await Promise.all(
    [args.table, ...positionals].map(async (f) => JSON.parse(await Deno.readTextFile(f))),
  );
  console.log(memoryBoundTable(files[0], files[1]));
  Deno.exit(0);
}

const MiB = 1024 * 1024;
const options = { maxConnectionsPerIp: 32, maxBufferedBytes: 16 * MiB };
const root = args.root ?? ROOT;
const mib = (bytes: number) => Math.round(bytes / MiB);
const load = () => Deno.loadavg().map((x) => Math.round(x * 100) / 100);

async function output(cmd: string, argv: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args: argv, cwd: root, stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "unavailable";
  }
}

/** One runtime, one case, on a fresh server. */
async function attack(runtime: RuntimeName, presence: boolean): Promise<MemoryBoundRun> {
  await using server = await GuildProcess.start(runtime, {
    members: 100_000,
    presencePerSecond: presence ? 10 : undefined,
    options,
    root,
  });
  const idle = server.rss();
  const warm = await warmUp(server);
  const r = await slowReaders(server, {
    before: warm,
    attackMs: 30_000,
    holdMs: presence ? 20_000 : 0,
  });
  const dropped = (await server.metrics()).droppedSlowClients;
  const run: MemoryBoundRun = {
    rssIdleMiB: mib(idle),
    rssAfterFirstJoinMiB: mib(warm),
    overIdleMiB: { sampled: mib(r.sampledPeak - idle), exact: mib(r.exactPeak - idle) },
    overFirstJoinMiB: { sampled: mib(r.sampledPeak - warm), exact: mib(r.exactPeak - warm) },
    dropped,
    admitted: r.admitted,
    refused: r.refused,
    firstRoundMs: r.firstRoundMs,
  };
  console.error(`[${runtime} ${presence ? "presence" : "quiet"}] ${JSON.stringify(run)}`);
  return run;
}

const runtimes = args.runtimes!.split(",") as RuntimeName[];
const results: Record<string, Record<string, MemoryBoundRun>> = {};
for (const rt of runtimes) results[rt] = {};
const loadAverage: Record<string, number[]> = {};
// As the test runs them: the runtimes at once per case, the quiet case after the presence case.
for (const [name, presence] of [["presence", true], ["quiet", false]] as const) {
  loadAverage[`${name} start`] = load();
  const runs = await Promise.all(runtimes.map((rt) => attack(rt, presence)));
  runtimes.forEach((rt, i) => results[rt][name] = runs[i]);
  loadAverage[`${name} end`] = load();
}

const commit = await output("git", ["rev-parse", "HEAD"]);
const dirty = (await output("git", ["status", "--porcelain", "--untracked-files=no"])) !== "";
const report = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  command: `deno run -A bench/memory_bound.ts ${Deno.args.join(" ")}`.trim(),
  commit: dirty ? `${commit} (with uncommitted changes)` : commit,
  build: args.build ?? "this tree",
  note:
    "32 non-reading sockets from one address (maxConnectionsPerIp 32, maxBufferedBytes 16 MiB) on a 100,000-member guild (13.3 MB join), re-sending connect every 0.5 s, replaced whenever admitted; presence every 100 ms: 30 s attack + 20 s hold; quiet: 30 s attack; the runtimes attacked at once per case (four servers and the attacker on a shared 2-core VM: load average below); growth in MiB over the idle server and over the server after its first join, sampled every 100 ms and after each round, and exact (VmHWM, reset when the attack starts); one run",
  machine: machineInfo(
    {
      deno: `deno ${Deno.version.deno}`,
      bun: `bun ${await output("bun", ["--version"])}`,
      node: `node ${await output(await ensureNode(), ["--version"])}`,
    },
    `deno ${Deno.version.deno} (the attacker: raw TCP sockets, one process for all runtimes)`,
  ),
  loadAverage,
  results,
};
const text = JSON.stringify(report, null, 2) + "\n";
if (args.out) await Deno.writeTextFile(args.out, text);
else console.log(text);
