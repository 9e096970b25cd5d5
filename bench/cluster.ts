// Scale-out benchmark: the same 1,000 viewers of one server on 1 process
// without Redis, then on 1, 2 and 3 instances over a private redis-server.
// Instance 0 makes --events library broadcasts at --rate per second (so every
// configuration delivers the same frames, however starved the machine); the
// table shows delivered frames/s and the CPU it cost, servers and
// redis-server together, per delivered frame.
//
//   deno run -A bench/cluster.ts                 # ~80 s: 4 configurations × ~20 s
//   deno run -A bench/cluster.ts --viewers 1000 --events 400 --rate 40
//   deno run -A bench/cluster.ts --quick --out bench/results/DATE-cluster.json
//
// --quick sends 200 broadcasts (5 s each configuration) instead of 400; --out
// writes the rows with the date, the machine and the versions as JSON, and
// --note says what the box was doing meanwhile.
//
// Viewers run in two client processes (not counted in the CPU column).
import { parseArgs } from "node:util";
import { boxJiffies, cpuSeconds, machineInfo } from "./_procfs.ts";
import { type ClusterRow, clusterTable } from "./_cluster_table.ts";

const { values } = parseArgs({
  options: {
    viewers: { type: "string", default: "1000" },
    events: { type: "string", default: "400" },
    rate: { type: "string", default: "40" },
    worker: { type: "boolean", default: false },
    urls: { type: "string" },
    end: { type: "string" },
    count: { type: "string" },
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    note: { type: "string" },
  },
});
if (values.quick && !Deno.args.some((a) => a.startsWith("--events"))) values.events = "200";

if (values.worker) await worker();
else await orchestrate();

/**
 * A client process: `count` viewers over `urls`. Counts the benchmark's
 * broadcast frames; exits when it has all `events` × `count`
 * of them, or at `end`, printing the count and the time of the last one.
 */
async function worker(): Promise<void> {
  const urls = values.urls!.split(",");
  const count = Number(values.count);
  const expected = count * Number(values.events);
  const end = Number(values.end);
  let frames = 0, joined = 0, closed = 0, last = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(urls[i % urls.length]);
    sockets.push(ws);
    ws.onopen = () => ws.send(JSON.stringify({ type: "connect", data: { server: "dworld" } }));
    ws.onclose = () => closed++;
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      if (e.data.startsWith('{"type":"server-join"')) joined++;
      else if (e.data.includes('"bench-')) {
        frames++;
        last = Date.now();
        if (frames === expected) resolve();
      }
    };
  }
  const timer = setTimeout(resolve, Math.max(0, end - Date.now()));
  await done;
  clearTimeout(timer);
  console.log(JSON.stringify({ frames, joined, closed, last }));
  for (const ws of sockets) ws.close();
  Deno.exit(0);
}

interface Proc {
  child: Deno.ChildProcess;
  lines: string[];
}

function spawn(cmd: string, args: string[]): Proc {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr]) {
    (async () => {
      const dec = new TextDecoder();
      let rest = "";
      for await (const chunk of s) {
        rest += dec.decode(chunk, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop()!;
        lines.push(...parts);
      }
    })();
  }
  return { child, lines };
}

async function waitLine(p: Proc, re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    for (const l of p.lines) {
      const m = l.match(re);
      if (m) return m;
    }
    if (Date.now() > deadline) throw new Error(`no ${re}:\n${p.lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(instances: number, redis: boolean): Promise<ClusterRow> {
  const viewers = Number(values.viewers);
  const events = Number(values.events), rate = Number(values.rate);
  // Sending takes events/rate seconds; a starved machine gets 30 s more.
  const deadlineMs = (events / rate) * 1000 + 30_000;
  const procs: Proc[] = [];
  let redisProc: Proc | undefined;
  const dir = await Deno.makeTempDir({ prefix: "dback-bench-redis-" });
  try {
    let url = "";
    if (redis) {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      redisProc = spawn("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ]);
      await waitLine(redisProc, /Ready to accept connections/);
      url = `redis://127.0.0.1:${port}`;
    }
    const ports: number[] = [];
    for (let i = 0; i < instances; i++) {
      const args = ["run", "-A", new URL("./cluster_instance.ts", import.meta.url).pathname];
      if (redis) args.push("--redis", url, "--namespace", "bench");
      const p = spawn(Deno.execPath(), args);
      procs.push(p);
      ports.push(Number((await waitLine(p, /READY (\d+)/))[1]));
    }
    if (redis) await Promise.race(procs.map((p) => waitLine(p, /is the publisher/)));
    const urls = ports.map((p) => `ws://127.0.0.1:${p}`).join(",");
    const start = Date.now() + 6000, end = start + deadlineMs;
    const workers = [0, 1].map((w) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL(import.meta.url).pathname,
          "--worker",
          "--urls",
          urls,
          "--count",
          String(Math.floor(viewers / 2) + (w === 0 ? viewers % 2 : 0)),
          "--events",
          String(events),
          "--end",
          String(end),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output()
    );
    const pids = procs.map((p) => p.child.pid);
    await new Promise((r) => setTimeout(r, start - Date.now()));
    const cpu0 = pids.map(cpuSeconds);
    const r0 = redisProc ? cpuSeconds(redisProc.child.pid) : 0;
    const b0 = boxJiffies();
    await (await fetch(`http://127.0.0.1:${ports[0]}/publish/${events}/${rate}`)).text();
    const outputs = await Promise.all(workers);
    const cpu1 = pids.map(cpuSeconds);
    const r1 = redisProc ? cpuSeconds(redisProc.child.pid) : 0;
    const b1 = boxJiffies();
    const t1 = Date.now();
    let frames = 0, joined = 0, closed = 0, last = start;
    for (const w of outputs) {
      const out = JSON.parse(new TextDecoder().decode(w.stdout).trim().split("\n").pop()!);
      frames += out.frames;
      joined += out.joined;
      closed += out.closed;
      last = Math.max(last, out.last);
    }
    const serverCpu = cpu1.reduce((a, b, i) => a + b - cpu0[i], 0);
    const redisCpu = r1 - r0;
    const secs = (t1 - start) / 1000;
    const sending = Math.max(events / rate, (last - start) / 1000);
    return {
      config: redis
        ? `${instances} instance${instances > 1 ? "s" : ""} + redis`
        : "1 process, no redis",
      frames,
      expected: events * viewers,
      framesPerSec: frames / sending,
      joined,
      closed,
      serverCpuPct: (serverCpu / secs) * 100,
      redisCpuPct: (redisCpu / secs) * 100,
      usPerFrame: ((serverCpu + redisCpu) / frames) * 1e6,
      boxPct: ((b1.busy - b0.busy) / (b1.total - b0.total)) * 100,
    };
  } finally {
    for (const p of procs) {
      try {
        p.child.kill("SIGTERM");
      } catch { /* gone */ }
      await p.child.status;
    }
    if (redisProc) {
      redisProc.child.kill("SIGTERM");
      await redisProc.child.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function orchestrate(): Promise<void> {
  const configs: [number, boolean][] = [[1, false], [1, true], [2, true], [3, true]];
  const only = values.only?.split(",").map(Number);
  const rows: ClusterRow[] = [];
  // The box is shared: its load before and after goes into the report.
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const loadBefore = load();
  for (const [n, redis] of configs) {
    const key = redis ? n : 0;
    if (only && !only.includes(key)) continue;
    const row = await run(n, redis);
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  if (values.out) {
    const redis = await new Deno.Command("redis-server", { args: ["--version"], stdout: "piped" })
      .output().then((o) => /v=([\d.]+)/.exec(new TextDecoder().decode(o.stdout))?.[1] ?? "?");
    const report = {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      command: `deno run -A bench/cluster.ts ${Deno.args.join(" ")}`.trim(),
      note: values.note ?? "",
      loadAverage: { before: loadBefore, after: load() },
      params: {
        viewers: Number(values.viewers),
        events: Number(values.events),
        rate: Number(values.rate),
      },
      machine: machineInfo(
        { deno: `deno ${Deno.version.deno}`, "redis-server": redis },
        `deno ${Deno.version.deno} (two client processes of WebSocket viewers)`,
      ),
      rows,
    };
    await Deno.writeTextFile(values.out, JSON.stringify(report, null, 2) + "\n");
  }
  console.log(
    `\n${values.viewers} viewers of one server; ${values.events} broadcasts at ${values.rate}/s from instance 0\n`,
  );
  console.log(clusterTable({ date: "", rows }));
}
