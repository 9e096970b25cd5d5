// Scale-out benchmark: the same 1,000 viewers of one server on 1 process
// without Redis, then on 1, 2 and 3 instances over a private redis-server.
// The mock world publishes at a fixed rate (one presence and one chat message
// every --interval ms), so every configuration delivers the same frames; the
// table shows delivered frames/s and the CPU it cost, servers and redis-server
// together, per delivered frame.
//
//   deno run -A bench/cluster.ts                 # ~80 s: 4 configurations × ~20 s
//   deno run -A bench/cluster.ts --viewers 1000 --interval 25 --window 10
//
// Viewers run in two client processes (not counted in the CPU column).
import { parseArgs } from "node:util";
import { cpuSeconds } from "./_procfs.ts";

const { values } = parseArgs({
  options: {
    viewers: { type: "string", default: "1000" },
    interval: { type: "string", default: "25" },
    window: { type: "string", default: "10" },
    worker: { type: "boolean", default: false },
    urls: { type: "string" },
    start: { type: "string" },
    end: { type: "string" },
    count: { type: "string" },
    only: { type: "string" },
  },
});

if (values.worker) await worker();
else await orchestrate();

/** A client process: `count` viewers over `urls`, counting frames in [start, end). */
async function worker(): Promise<void> {
  const urls = values.urls!.split(",");
  const count = Number(values.count);
  const start = Number(values.start), end = Number(values.end);
  let frames = 0, joined = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(urls[i % urls.length]);
    sockets.push(ws);
    ws.onopen = () => ws.send(JSON.stringify({ type: "connect", data: { server: "dworld" } }));
    ws.onmessage = (e) => {
      const now = Date.now();
      if (typeof e.data === "string" && e.data.startsWith('{"type":"server-join"')) joined++;
      else if (now >= start && now < end) frames++;
    };
  }
  await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now() + 200)));
  console.log(JSON.stringify({ frames, joined }));
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

function boxJiffies(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

interface Row {
  config: string;
  framesPerSec: number;
  joined: number;
  serverCpuPct: number;
  redisCpuPct: number;
  usPerFrame: number;
  boxPct: number;
}

async function run(instances: number, redis: boolean): Promise<Row> {
  const viewers = Number(values.viewers);
  const windowMs = Number(values.window) * 1000;
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
      args.push("--interval", String(values.interval));
      if (redis) args.push("--redis", url, "--namespace", "bench");
      const p = spawn(Deno.execPath(), args);
      procs.push(p);
      ports.push(Number((await waitLine(p, /READY (\d+)/))[1]));
    }
    if (redis) await Promise.race(procs.map((p) => waitLine(p, /is the publisher/)));
    const urls = ports.map((p) => `ws://127.0.0.1:${p}`).join(",");
    const start = Date.now() + 6000, end = start + windowMs;
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
          "--start",
          String(start),
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
    await new Promise((r) => setTimeout(r, end - Date.now()));
    const cpu1 = pids.map(cpuSeconds);
    const r1 = redisProc ? cpuSeconds(redisProc.child.pid) : 0;
    const b1 = boxJiffies();
    let frames = 0, joined = 0;
    for (const w of await Promise.all(workers)) {
      const out = JSON.parse(new TextDecoder().decode(w.stdout).trim().split("\n").pop()!);
      frames += out.frames;
      joined += out.joined;
    }
    const serverCpu = cpu1.reduce((a, b, i) => a + b - cpu0[i], 0);
    const redisCpu = r1 - r0;
    const secs = windowMs / 1000;
    return {
      config: redis
        ? `${instances} instance${instances > 1 ? "s" : ""} + redis`
        : "1 process, no redis",
      framesPerSec: frames / secs,
      joined,
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
  const rows: Row[] = [];
  for (const [n, redis] of configs) {
    const key = redis ? n : 0;
    if (only && !only.includes(key)) continue;
    const row = await run(n, redis);
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  const base = rows.find((r) => r.config.startsWith("1 process"));
  console.log(
    `\n${values.viewers} viewers of one server, one presence + one message every ${values.interval} ms, ${values.window} s window\n`,
  );
  console.log(
    "| configuration | joined | delivered frames/s | servers CPU | redis CPU | CPU µs per frame | vs 1 process | box busy |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const ratio = base ? (r.usPerFrame / base.usPerFrame).toFixed(2) + "×" : "-";
    console.log(
      `| ${r.config} | ${r.joined} | ${Math.round(r.framesPerSec).toLocaleString("en")} | ${
        r.serverCpuPct.toFixed(0)
      }% | ${r.redisCpuPct.toFixed(1)}% | ${r.usPerFrame.toFixed(2)} | ${ratio} | ${
        r.boxPct.toFixed(0)
      }% |`,
    );
  }
}
