// Server CPU per join, split by thread: a fresh server gets `--clients` upgrades + joins (cold),
// then, after closing them all, the same again `--rounds` times (warm). The CPU time of the
// server process (schedstat of each thread, from /proc) per join is a far steadier figure than
// joins/s on a shared box, and the split tells the JavaScript thread from the engine's compiler
// threads (JavaScriptCore's `JITWorker`, V8's workers) and the rest (GC helpers, allocator).
// Trees are compared interleaved (A/B): each `--tree DIR` is a checkout of this repository
// (default: this one); the bare peer always runs from this one. Bun (dback-bun, bun), Deno
// (dback, raw-deno) or Node (dback-node, node-ws: run bench/bench.sh once for ws). It also records what a fresh server spends before it is ready: the time from
// its spawn to its `READY` line and the CPU it used by then (dback warms its join path there).
// With `--frame-windows N`, the clients of the last round stay joined for N fixed-rate windows
// (300 broadcasts at 100/s each; the first is not counted) and the server's CPU per delivered frame
// is recorded too: an A/B of CPU per frame between checkouts, in the same interleaved starts.
//
//   deno run -A bench/join_cpu.ts --servers dback-bun,bun --reps 3 [--tree A --tree B] [--out F]
import { parseArgs } from "node:util";
import { ROOT } from "./_paths.ts";
import { CHECKOUT_OPTIONS, checkouts, treeLabel, writeResults } from "./_checkouts.ts";
import { median } from "./_stats.ts";
import { sleep, WorkerProc } from "./_procs.ts";
import { nodeBinary } from "./_targets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ...CHECKOUT_OPTIONS,
    servers: { type: "string", default: "dback-bun,bun" },
    rounds: { type: "string", default: "3" },
    "frame-windows": { type: "string", default: "0" },
  },
});
const n = Number(values.clients);
const rounds = Number(values.rounds);
const frameWindows = Number(values["frame-windows"]);
const bun = Deno.env.get("BUN_BIN") ?? "bun";
const bunFlags = (Deno.env.get("BENCH_BUN_FLAGS") ?? "").split(" ").filter(Boolean);

function command(name: string, tree: string): string[] {
  const users = ["--users", values.users];
  if (name === "dback-bun") {
    return [bun, "run", "--no-install", ...bunFlags, `${tree}/bench/servers/dback.ts`, ...users];
  }
  if (name === "bun") return [bun, ...bunFlags, `${tree}/bench/peers/bun.ts`, ...users];
  // Deno: the same files as the peers benchmark runs (`_targets.ts`), from the given tree.
  const deno = [Deno.execPath(), "run", "-A", `--config=${tree}/deno.json`];
  if (name === "dback") return [...deno, `${tree}/bench/servers/dback.ts`, ...users];
  if (name === "raw-deno") return [...deno, `${tree}/bench/peers/raw-deno.ts`, ...users];
  // Node: the same binary as the peers benchmark; the bare `ws` peer from this repository's bench/npm.
  const node = nodeBinary();
  if (name === "dback-node" && node) return [node, `${tree}/bench/servers/dback.ts`, ...users];
  if (name === "node-ws" && node) return [node, `${ROOT}/bench/peers/node-ws.mjs`, ...users];
  throw new Error(`unknown server ${name}`);
}

async function start(
  cmd: string[],
  cwd: string,
): Promise<{ child: Deno.ChildProcess; port: number; startMs: number; startCpuMs: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
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
      const startMs = performance.now() - t0;
      const c = split(child.pid);
      return { child, port: Number(m[1]), startMs, startCpuMs: (c.main + c.jit + c.other) * 1000 };
    }
  }
}

/** CPU seconds of a process by kind of thread: the main (JavaScript) one, JIT compilers, the rest. */
interface Split {
  main: number;
  jit: number;
  other: number;
}

function split(pid: number): Split {
  const s: Split = { main: 0, jit: 0, other: 0 };
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(
        Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0],
      );
      const comm = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/comm`).trim();
      if (Number(t.name) === pid) s.main += ns / 1e9;
      else if (/JIT|Compil|Maglev|Turbofan/i.test(comm)) s.jit += ns / 1e9;
      else s.other += ns / 1e9;
    } catch { /* the thread exited */ }
  }
  return s;
}

const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
const trees = checkouts(values.tree);
const variants = values.servers.split(",").flatMap((s) =>
  s === "bun" || s === "raw-deno" || s === "node-ws"
    ? [{ name: s, tree: ROOT }]
    : trees.map((tree) => ({ name: s, tree }))
);
/** µs per join, by variant, phase and thread kind. */
type Row = {
  cold: Split[];
  warm: Split[];
  loads: number[][];
  start: number[];
  startCpu: number[];
  frames: number[][];
};
const results = new Map<string, Row>();
const perJoin = (a: Split, b: Split): Split => ({
  main: (b.main - a.main) * 1e6 / n,
  jit: (b.jit - a.jit) * 1e6 / n,
  other: (b.other - a.other) * 1e6 / n,
});
const total = (s: Split) => s.main + s.jit + s.other;
const show = (s: Split) =>
  `${total(s).toFixed(1)} (main ${s.main.toFixed(1)}, jit ${s.jit.toFixed(1)}, other ${
    s.other.toFixed(1)
  })`;

/** µs of server CPU (all threads) per delivered frame, one value per counted window. */
async function frameCpu(worker: WorkerProc, pid: number, port: number): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < frameWindows; k++) {
    const c0 = split(pid);
    const r = await fetch(`http://127.0.0.1:${port}/publish/300/100/0`);
    const { last } = await r.json() as { last: number };
    while (worker.done < last) await worker.progress();
    const c1 = split(pid);
    if (k > 0) out.push((total(c1) - total(c0)) * 1e6 / (300 * n));
  }
  return out;
}

for (let rep = 0; rep < Number(values.reps); rep++) {
  // Alternating order (A B, B A, …): neither side always meets the box just after the other.
  for (const v of rep % 2 ? [...variants].reverse() : variants) {
    const key = `${v.name}@${v.tree}`;
    const { child, port, startMs, startCpuMs } = await start(command(v.name, v.tree), v.tree);
    await sleep(300);
    // A generator per server start: its progress counter starts with the server's sequence numbers.
    const worker = new WorkerProc();
    const per: Split[] = [];
    let frames: number[] = [];
    for (let r = 0; r <= rounds; r++) {
      const c0 = split(child.pid);
      const j = await worker.ask(
        { cmd: "join", port, n, concurrency: 128, stall: false },
        "joined",
      );
      const c1 = split(child.pid);
      if (j.ok !== n) console.error(`${key}: ${j.failed} failed`, j.errors);
      per.push(perJoin(c0, c1));
      if (r === rounds && frameWindows > 0) frames = await frameCpu(worker, child.pid, port);
      await worker.ask({ cmd: "close-all" }, "closed");
      await sleep(200);
    }
    await worker.exit();
    child.kill("SIGTERM");
    await child.status;
    const row = results.get(key) ??
      { cold: [], warm: [], loads: [], start: [], startCpu: [], frames: [] };
    row.frames.push(frames);
    row.start.push(startMs);
    row.startCpu.push(startCpuMs);
    row.cold.push(per[0]);
    row.warm.push(...per.slice(1));
    row.loads.push(load());
    results.set(key, row);
    console.log(
      `${key} rep ${rep}: ready in ${startMs.toFixed(0)} ms (${startCpuMs.toFixed(0)} ms CPU); ` +
        `cold ${show(per[0])} µs/join; warm ${
          per.slice(1).map((s) => total(s).toFixed(1)).join(" ")
        }${frames.length ? `; µs/frame ${frames.map((x) => x.toFixed(2)).join(" ")}` : ""} (load ${
          load().join(" ")
        })`,
    );
  }
}

const medianSplit = (xs: Split[]) => ({
  total: median(xs.map(total)),
  main: median(xs.map((s) => s.main)),
  jit: median(xs.map((s) => s.jit)),
  other: median(xs.map((s) => s.other)),
});
const round1 = (x: number) => Math.round(x * 10) / 10;
const summary = [...results].map(([key, r]) => {
  const [server, tree] = key.split("@");
  const cold = medianSplit(r.cold), warm = medianSplit(r.warm);
  console.log(
    `${key}: median µs/join cold ${cold.total.toFixed(1)} (main ${cold.main.toFixed(1)}, jit ${
      cold.jit.toFixed(1)
    }), warm ${warm.total.toFixed(1)} (main ${warm.main.toFixed(1)}, jit ${
      warm.jit.toFixed(1)
    }); ready in ${median(r.start).toFixed(0)} ms (${median(r.startCpu).toFixed(0)} ms CPU)${
      frameWindows > 1 ? `; µs/frame ${median(r.frames.flat()).toFixed(2)}` : ""
    }`,
  );
  const r1 = (s: typeof cold) =>
    Object.fromEntries(Object.entries(s).map(([k, x]) => [k, round1(x)]));
  return {
    server,
    // Named by its last path segment (a commit, say): no path of the machine goes into a file.
    tree: treeLabel(tree),
    cold: r1(cold),
    warm: r1(warm),
    // Spawn to READY (wall ms) and the CPU the process used by then, medians.
    startMs: Math.round(median(r.start)),
    startCpuMs: Math.round(median(r.startCpu)),
    // With --frame-windows: the counted windows of each start, and their median.
    ...(frameWindows > 1
      ? {
        framesUs: r.frames.map((w) => w.map((x) => Math.round(x * 100) / 100)),
        frameUs: Math.round(median(r.frames.flat()) * 100) / 100,
      }
      : {}),
    loads: r.loads,
  };
});
if (values.out) {
  const onBun = variants.some((v) => v.name === "bun" || v.name === "dback-bun");
  const onNode = variants.some((v) => v.name === "node-ws" || v.name === "dback-node");
  writeResults(values.out, onBun ? "bun" : onNode ? "node" : "deno", {
    method: `server CPU (schedstat of each thread) per join: ${n} clients (raw RFC 6455 ` +
      `load generator, 128 at a time) join a fresh server (cold), then ${rounds} more ` +
      `rounds after closing them (warm); median over ${values.reps} interleaved ` +
      `runs of each server; main = the JavaScript thread, jit = compiler threads (JavaScriptCore's; ` +
      `V8's workers compile and collect garbage alike and count as other threads); ` +
      (frameWindows > 1
        ? `then, with the last round's clients joined, ${frameWindows} windows of 300 ` +
          `broadcasts at 100/s (the first not counted): server CPU per delivered frame; `
        : "") +
      `the box is shared ` +
      `and noisy (load averages per server run)`,
    users: Number(values.users),
    results: summary,
  }, bun);
}
