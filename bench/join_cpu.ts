// Server CPU per join: a fresh server gets `--clients` upgrades + joins (cold), then,
// after closing them all, the same again `--rounds` times (warm). The CPU time of the
// server process (from /proc) per join is a far steadier figure than joins/s on a
// shared box. Trees are compared interleaved (A/B): each `--tree DIR` is a checkout of
// this repository; the first is this one.
//
//   deno run -A bench/join_cpu.ts --servers dback-bun,bun --reps 5 [--tree /tmp/old]
import { parseArgs } from "node:util";
import { cpuSeconds } from "./_procfs.ts";
import { ROOT } from "./_paths.ts";
import { sleep, WorkerProc } from "./_procs.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    servers: { type: "string", default: "dback-bun,bun" },
    tree: { type: "string", multiple: true, default: [] },
    clients: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    reps: { type: "string", default: "3" },
    users: { type: "string", default: "100" },
  },
});
const n = Number(values.clients);
const rounds = Number(values.rounds);
const bun = Deno.env.get("BUN_BIN") ?? "bun";
const bunFlags = (Deno.env.get("BENCH_BUN_FLAGS") ?? "").split(" ").filter(Boolean);

function command(name: string, tree: string): string[] {
  const users = ["--users", values.users];
  if (name === "dback-bun") {
    return [bun, "run", "--no-install", ...bunFlags, `${tree}/bench/servers/dback.ts`, ...users];
  }
  if (name === "bun") return [bun, ...bunFlags, `${tree}/bench/peers/bun.ts`, ...users];
  throw new Error(`unknown server ${name}`);
}

async function start(
  cmd: string[],
  cwd: string,
): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    stdout: "piped",
    stderr: "inherit",
  })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${cmd.join(" ")}: no READY`);
    buf += value;
    const m = /READY (\d+)/.exec(buf);
    if (m) {
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { child, port: Number(m[1]) };
    }
  }
}

const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const trees = [ROOT, ...values.tree];
const variants = values.servers.split(",").flatMap((s) =>
  s === "bun" ? [{ name: s, tree: ROOT }] : trees.map((tree) => ({ name: s, tree }))
);
const results = new Map<string, { cold: number[]; warm: number[] }>();
const worker = new WorkerProc();
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const v of variants) {
    const key = `${v.name}@${v.tree}`;
    const { child, port } = await start(command(v.name, v.tree), v.tree);
    await sleep(300);
    const per: number[] = [];
    for (let r = 0; r <= rounds; r++) {
      const c0 = cpuSeconds(child.pid);
      const j = await worker.ask(
        { cmd: "join", port, n, concurrency: 128, stall: false },
        "joined",
      );
      const c1 = cpuSeconds(child.pid);
      if (j.ok !== n) console.error(`${key}: ${j.failed} failed`, j.errors);
      per.push(((c1 - c0) * 1e6) / n);
      await worker.ask({ cmd: "close-all" }, "closed");
      await sleep(200);
    }
    child.kill("SIGTERM");
    await child.status;
    const entry = results.get(key) ?? { cold: [], warm: [] };
    entry.cold.push(per[0]);
    entry.warm.push(...per.slice(1));
    results.set(key, entry);
    console.log(
      `${key} rep ${rep}: cold ${per[0].toFixed(1)} µs/join, warm ${
        per.slice(1).map((x) => x.toFixed(1)).join(" ")
      } (load ${load()})`,
    );
  }
}
await worker.exit();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [key, r] of results) {
  console.log(
    `${key}: median cold ${median(r.cold).toFixed(1)} µs/join, warm ${
      median(r.warm).toFixed(1)
    } µs/join`,
  );
}
