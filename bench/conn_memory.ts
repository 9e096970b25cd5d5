// What one idle joined connection costs on Deno, split into retained JS heap, committed V8 heap and
// the rest of RSS: dback (mock world, `dworld`) against a bare `Deno.serve` loop that sends the
// same kind of frames, each with `--clients` Deno WebSocket clients (in a child process) that join
// one after the other and stay. Each server measures itself after two forced GCs, once 1 s after
// the last join and once after `--settle-ms` (V8 shrinks its heap when idle).
//
//   deno run -A bench/conn_memory.ts [--clients 1000] [--runs 2] [--settle-ms 15000] [--out FILE]
import { parseArgs } from "node:util";
import { machineInfo } from "./_procfs.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    role: { type: "string", default: "driver" },
    kind: { type: "string", default: "dback" },
    port: { type: "string" },
    clients: { type: "string", default: "1000" },
    runs: { type: "string", default: "2" },
    "settle-ms": { type: "string", default: "15000" },
    out: { type: "string" },
  },
});
const N = Number(args.clients);
const SELF = new URL(import.meta.url).pathname;

if (args.role === "clients") {
  let joined = 0;
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${args.port}`);
      let first = true;
      ws.onmessage = (e) => {
        if (first) {
          first = false;
          ws.send(JSON.stringify({ type: "connect", data: { server: "dworld" } }));
        } else if (String(e.data).startsWith('{"type":"server-join"')) {
          joined++;
          resolve();
        }
      };
      ws.onerror = () => resolve();
    });
  }
  console.log(`JOINED ${joined}`);
  await new Promise((r) => setTimeout(r, 600_000));
} else if (args.role === "server") {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const snap = () => {
    gc();
    gc();
    return Deno.memoryUsage();
  };
  let port: number;
  let stop: () => Promise<void>;
  if (args.kind === "dback") {
    const { WebSocketServer } = await import("../mod.ts");
    const s = new WebSocketServer({
      port: 0,
      hostname: "127.0.0.1",
      logLevel: "warn",
      maxConnectionsPerIp: 100_000,
      ipFramesPerSecond: 1e6,
      ipBytesPerSecond: 1e9,
      ipJoinBurst: 1e6,
    });
    await s.start();
    port = s.port;
    stop = () => s.stop();
  } else {
    const list = '{"type":"server-list","data":{"232769614004748288":{"id":"dworld",' +
      '"name":"D-World","default":true,"passworded":false}}}';
    const join = '{"type":"server-join","data":{"users":{"1":{"uid":"1","username":"a",' +
      '"status":"online","roleColor":"#ffffff"}},"request":{"server":"dworld"},"serverName":"D-World"}}';
    const set = new Set<WebSocket>();
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 60 });
      socket.onopen = () => {
        set.add(socket);
        socket.send(list);
      };
      socket.onmessage = () => socket.send(join);
      socket.onclose = () => set.delete(socket);
      return response;
    });
    port = server.addr.port;
    stop = () => server.shutdown();
  }
  await new Promise((r) => setTimeout(r, 300));
  const a = snap();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, "--role", "clients", "--port", String(port), "--clients", String(N)],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("JOINED")) out += (await reader.read()).value ?? "";
  const per = (b: Deno.MemoryUsage, k: keyof Deno.MemoryUsage) =>
    Math.round((b[k] - a[k]) / N / 1024 * 10) / 10;
  const at = async (ms: number) => {
    await new Promise((r) => setTimeout(r, ms));
    const b = snap();
    return { rss: per(b, "rss"), heapUsed: per(b, "heapUsed"), heapTotal: per(b, "heapTotal") };
  };
  const after1s = await at(1000);
  const settled = await at(Number(args["settle-ms"]) - 1000);
  console.log(JSON.stringify({ joined: Number(out.match(/JOINED (\d+)/)?.[1]), after1s, settled }));
  child.kill();
  await child.status;
  await stop();
  Deno.exit(0);
} else {
  // The machine is shared: the load around the runs says how noisy they were.
  const loadAverage = () => Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  const loadBefore = loadAverage();
  const runs: Array<{ kind: string; run: number; result: unknown }> = [];
  for (let run = 1; run <= Number(args.runs); run++) {
    for (const kind of ["raw-deno", "dback"]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          SELF,
          "--role",
          "server",
          "--kind",
          kind,
          "--clients",
          String(N),
          "--settle-ms",
          String(args["settle-ms"]),
        ],
        stdout: "piped",
      }).output();
      const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      console.error(kind, run, JSON.stringify(result));
      runs.push({ kind, run, result });
    }
  }
  const report = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    command: `deno run -A bench/conn_memory.ts ${Deno.args.join(" ")}`.trim(),
    note:
      "KiB per idle joined connection (growth over the clients / their count) after two forced GCs; " +
      "rss, heapUsed (retained JS objects), heapTotal (committed V8 heap); one 2-core VM shared with other jobs",
    machine: machineInfo(
      { deno: `deno ${Deno.version.deno}` },
      "a Deno child process, sequential joins",
    ),
    loadAverage: { before: loadBefore, after: loadAverage() },
    clients: N,
    runs,
  };
  const text = JSON.stringify(report, null, 2) + "\n";
  if (args.out) await Deno.writeTextFile(args.out, text);
  else console.log(text);
}
