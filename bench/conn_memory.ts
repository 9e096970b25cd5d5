// What one idle joined connection costs, split into retained JS heap, committed heap and the rest
// of RSS: dback against the bare server of the same runtime, each with `--clients` Deno WebSocket
// clients (in a child process) that join one after the other and stay. Pairs (target names of
// bench/_targets.ts): on Deno `dback` vs `raw-deno` (a bare `Deno.serve` loop), on Node
// `dback-node` vs `node-ws` (bare `ws`), on Bun `dback-bun` vs `bun` (raw `Bun.serve`).
//
// Both sides of a pair do the same wire work: the same benchmark world (peers/common.mjs, a user
// map of `--users` users), so the `server-list` and `server-join` frames are the same bytes (the
// clients report their sizes, and a run whose pair differs fails), and no other frame is sent
// (dback's mock world, which sends presence and chat to every viewer, is not used). Each server is
// started through bench/_mem_probe.ts and measures itself after two forced collections, once 1 s
// after the last join and once after `--settle-ms`.
//
// `--warmup N`: before the baseline, N clients join and leave, so what a server compiles and grows
// once (code for the join path, heap it keeps) is not divided among the measured clients.
//
//   deno run -A bench/conn_memory.ts [--runtimes deno,node,bun] [--clients 1000] [--users 4]
//     [--runs 2] [--settle-ms 15000] [--warmup 0] [--out FILE]
import { parseArgs } from "node:util";
import { DENO, ROOT } from "./_paths.ts";
import { machineInfo } from "./_procfs.ts";
import { lines, sleep } from "./_procs.ts";
import { TARGETS } from "./_targets.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    role: { type: "string", default: "driver" },
    port: { type: "string" },
    runtimes: { type: "string", default: "deno,node,bun" },
    clients: { type: "string", default: "1000" },
    users: { type: "string", default: "4" },
    runs: { type: "string", default: "2" },
    "settle-ms": { type: "string", default: "15000" },
    warmup: { type: "string", default: "0" },
    out: { type: "string" },
  },
});
const N = Number(args.clients);
const SELF = new URL(import.meta.url).pathname;

/** The bare server and dback, per runtime. */
const PAIRS: Record<string, { bare: string; dback: string }> = {
  deno: { bare: "raw-deno", dback: "dback" },
  node: { bare: "node-ws", dback: "dback-node" },
  bun: { bare: "bun", dback: "dback-bun" },
};

/** The lines a child writes, awaited one matching line at a time; the pipe is always drained. */
class Lines {
  #seen: string[] = [];
  #waiters: Array<{ test: (l: string) => boolean; resolve: (l: string | null) => void }> = [];
  #ended = false;
  /** The last lines, for error messages. */
  tail: string[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    (async () => {
      for await (const l of lines(stream)) this.#line(l);
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w.resolve(null);
    })();
  }

  #line(l: string): void {
    this.tail.push(l);
    if (this.tail.length > 20) this.tail.shift();
    const i = this.#waiters.findIndex((w) => w.test(l));
    if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(l);
    else this.#seen.push(l);
  }

  /** The next line that passes `test` (lines seen before count), or null when the stream ends. */
  next(test: (l: string) => boolean): Promise<string | null> {
    const i = this.#seen.findIndex(test);
    if (i >= 0) return Promise.resolve(this.#seen.splice(i, 1)[0]);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }
}

/** A target's command line, started through the memory probe with a collectable heap. */
function probedCommand(kind: string, users: number) {
  const c = TARGETS[kind].command(users);
  if ("unavailable" in c) return c;
  const cmd = [...c.cmd];
  const file = cmd.findIndex((a, i) => i > 0 && a.startsWith(`${ROOT}/bench/`));
  cmd.splice(file, 0, `${ROOT}/bench/_mem_probe.ts`);
  if (cmd[0] === DENO) cmd.splice(cmd.indexOf("run") + 1, 0, "--v8-flags=--expose-gc");
  else if (!cmd[0].includes("bun")) cmd.splice(1, 0, "--expose-gc");
  return { cmd, env: c.env };
}

interface Usage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

/** One server with `N` clients joined: its growth per connection, 1 s after the last join and settled. */
async function measure(kind: string, users: number, settleMs: number, warmup: number) {
  const c = probedCommand(kind, users);
  if ("unavailable" in c) return { unavailable: c.unavailable };
  const server = new Deno.Command(c.cmd[0], {
    args: c.cmd.slice(1),
    cwd: ROOT,
    env: c.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const out = new Lines(server.stdout);
  const stdin = server.stdin.getWriter();
  let clients: Deno.ChildProcess | undefined;
  try {
    const ready = await out.next((l) => /^(READY|UNAVAILABLE)/.test(l));
    if (!ready?.startsWith("READY")) {
      return { unavailable: ready ?? `exited: ${out.tail.join(" | ")}` };
    }
    const snap = async (): Promise<Usage> => {
      await stdin.write(new TextEncoder().encode("snap\n"));
      const line = await out.next((l) => l.startsWith("SNAP "));
      if (!line) throw new Error(`${kind}: no snapshot (${out.tail.join(" | ")})`);
      return JSON.parse(line.slice(5));
    };
    const port = ready.split(" ")[1];
    const spawnClients = (count: number) =>
      new Deno.Command(DENO, {
        args: ["run", "-A", SELF, "--role", "clients", "--port", port, "--clients", String(count)],
        stdout: "piped",
        stderr: "null",
      }).spawn();
    if (warmup > 0) {
      const warm = spawnClients(warmup);
      const done = await new Lines(warm.stdout).next((l) => l.startsWith("JOINED"));
      warm.kill("SIGKILL");
      await warm.status;
      if (!done) throw new Error(`${kind}: the warm-up clients exited before joining`);
      await sleep(2000); // their closes handled
    }
    await sleep(300);
    const base = await snap();
    clients = spawnClients(N);
    const joined = await new Lines(clients.stdout).next((l) => l.startsWith("JOINED"));
    if (!joined) throw new Error(`${kind}: the clients exited before joining`);
    const [, count, list, join] = joined.split(" ").map(Number);
    const per = (b: Usage, k: keyof Usage) => Math.round((b[k] - base[k]) / N / 1024 * 10) / 10;
    const at = async (ms: number) => {
      await sleep(ms);
      const b = await snap();
      return { rss: per(b, "rss"), heapUsed: per(b, "heapUsed"), heapTotal: per(b, "heapTotal") };
    };
    const after1s = await at(1000);
    const settled = await at(settleMs - 1000);
    return {
      joined: count,
      frameBytes: { list, join },
      baseMiB: { rss: Math.round(base.rss / 1048576 * 10) / 10 },
      after1s,
      settled,
    };
  } finally {
    if (clients) {
      clients.kill("SIGKILL");
      await clients.status;
    }
    await stdin.close().catch(() => {});
    server.kill("SIGKILL");
    await server.status;
  }
}

if (args.role === "clients") {
  let joined = 0;
  let list = 0;
  let join = 0;
  const encoder = new TextEncoder();
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${args.port}`);
      let first = true;
      ws.onmessage = (e) => {
        const text = String(e.data);
        if (first) {
          first = false;
          if (i === 0) list = encoder.encode(text).length;
          ws.send(JSON.stringify({ type: "connect", data: { server: "bench" } }));
        } else if (text.startsWith('{"type":"server-join"')) {
          if (i === 0) join = encoder.encode(text).length;
          joined++;
          resolve();
        }
      };
      ws.onerror = () => resolve();
    });
  }
  console.log(`JOINED ${joined} ${list} ${join}`);
  await new Promise((r) => setTimeout(r, 600_000));
} else {
  // The machine is shared: the load around the runs says how noisy they were.
  const loadAverage = () => Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  const loadBefore = loadAverage();
  const runtimes = args.runtimes.split(",").filter((r) => r in PAIRS);
  const users = Number(args.users);
  const runs: Array<{ kind: string; run: number; load: number[]; result: unknown }> = [];
  const unavailable: Record<string, string> = {};
  for (let run = 1; run <= Number(args.runs); run++) {
    for (const rt of runtimes) {
      const pair: Record<string, { list: number; join: number }> = {};
      for (const kind of [PAIRS[rt].bare, PAIRS[rt].dback]) {
        if (unavailable[kind]) continue;
        const load = loadAverage();
        const result = await measure(kind, users, Number(args["settle-ms"]), Number(args.warmup));
        console.error(kind, run, JSON.stringify(result));
        if ("unavailable" in result) {
          unavailable[kind] = String(result.unavailable);
          continue;
        }
        if (result.joined !== N) throw new Error(`${kind}: ${result.joined} of ${N} joined`);
        pair[kind] = result.frameBytes;
        runs.push({ kind, run, load, result });
      }
      const sizes = Object.values(pair).map((f) => JSON.stringify(f));
      if (new Set(sizes).size > 1) {
        throw new Error(`${rt}: the pair sent different frames: ${JSON.stringify(pair)}`);
      }
    }
  }
  const versions: Record<string, string> = {};
  for (const rt of runtimes) versions[rt] = TARGETS[PAIRS[rt].bare].version();
  const report = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    command: `deno run -A bench/conn_memory.ts ${Deno.args.join(" ")}`.trim(),
    note:
      "KiB per idle joined connection (growth over the clients / their count) after two forced " +
      "collections; rss, heapUsed (retained JS objects), heapTotal (committed heap); both servers " +
      "of a pair send the same server-list and server-join bytes and nothing else; " +
      "one 2-core VM shared with other jobs (load average per server in each run)",
    machine: machineInfo(versions, "a Deno child process, sequential joins"),
    loadAverage: { before: loadBefore, after: loadAverage() },
    clients: N,
    users,
    ...(Number(args.warmup) > 0 ? { warmup: Number(args.warmup) } : {}),
    ...(Object.keys(unavailable).length ? { unavailable } : {}),
    runs,
  };
  const text = JSON.stringify(report, null, 2) + "\n";
  if (args.out) await Deno.writeTextFile(args.out, text);
  else console.log(text);
}
