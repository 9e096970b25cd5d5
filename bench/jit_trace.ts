// What the engine compiles, and throws away, while a fresh server warms up and serves its first
// joins: each `--tree` (a checkout of this repository) runs dback with the engine's own traces on
// (JavaScriptCore's `reportCompileTimes` and `printEachOSRExit` on Bun; V8's `--trace-opt
// --trace-deopt` on Deno and Node), and the trace is cut at `READY` and after each round of
// `--clients` joins (raw load generator, 128 at a time; the clients close between rounds).
// Per phase: how many optimised compiles and how long they took (as the engine reports them),
// and how many times optimised code was left for a slower tier (JavaScriptCore's speculation
// failures, V8's deoptimisations), with the functions that left it most often.
//
//   deno run -A bench/jit_trace.ts --runtime bun|deno|node --tree A --tree B [--reps 3] [--out F]
import { parseArgs } from "node:util";
import { CHECKOUT_OPTIONS, checkouts, treeLabel, writeResults } from "./_checkouts.ts";
import { median } from "./_stats.ts";
import { sleep, WorkerProc } from "./_procs.ts";
import { nodeBinary } from "./_targets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ...CHECKOUT_OPTIONS,
    runtime: { type: "string", default: "bun" },
    rounds: { type: "string", default: "2" },
  },
});
const runtime = values.runtime as "bun" | "deno" | "node";
const n = Number(values.clients);
const rounds = Number(values.rounds);
const trees = checkouts(values.tree);
const bun = Deno.env.get("BUN_BIN") ?? "bun";

/** One phase of one run: optimised compiles (count, engine-reported ms) and exits from them. */
interface Phase {
  phase: string;
  compiles: number;
  compileMs: number;
  exits: number;
  /** The functions that left optimised code most often: `name (reason)` and how often. */
  top: [string, number][];
}

function command(tree: string): { cmd: string; args: string[]; env: Record<string, string> } {
  const server = [`${tree}/bench/servers/dback.ts`, "--users", values.users!];
  if (runtime === "bun") {
    return {
      cmd: bun,
      args: ["run", "--no-install", ...server],
      env: { BUN_JSC_reportCompileTimes: "true", BUN_JSC_printEachOSRExit: "true" },
    };
  }
  const flags = "--trace-opt --trace-deopt";
  if (runtime === "deno") {
    const config = `--config=${tree}/deno.json`;
    return {
      cmd: Deno.execPath(),
      args: ["run", "-A", config, `--v8-flags=${flags.replace(" ", ",")}`, ...server],
      env: {},
    };
  }
  const node = nodeBinary();
  if (!node) throw new Error("no Node.js ≥ 22.18 here (bench/bench.sh installs one)");
  return { cmd: node, args: [...flags.split(" "), ...server], env: {} };
}

const MARK = "\n=== dback jit_trace phase ===\n";

/** The trace of one fresh server: everything it printed, with a mark after each phase. */
async function trace(tree: string): Promise<string> {
  const { cmd, args, env } = command(tree);
  const child = new Deno.Command(cmd, { args, cwd: tree, env, stdout: "piped", stderr: "piped" })
    .spawn();
  const chunks: string[] = [];
  let port = 0;
  let ready: (p: number) => void;
  const readyP = new Promise<number>((r) => ready = r);
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const bytes of s) {
      const text = decoder.decode(bytes, { stream: true });
      chunks.push(text);
      if (!port) {
        const m = /READY (\d+)/.exec(chunks.join("").slice(-20_000));
        if (m) ready(port = Number(m[1]));
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  await Promise.race([readyP, child.status.then(() => Promise.reject(new Error("no READY")))]);
  // Compiles of the warm-up still running on the compiler threads finish in its phase.
  await sleep(500);
  chunks.push(MARK);
  const worker = new WorkerProc();
  for (let r = 0; r < rounds; r++) {
    const j = await worker.ask({ cmd: "join", port, n, concurrency: 128, stall: false }, "joined");
    if (j.ok !== n) throw new Error(`${tree}: ${j.failed} joins failed`);
    await sleep(300);
    chunks.push(MARK);
    await worker.ask({ cmd: "close-all" }, "closed");
    await sleep(300);
  }
  await worker.exit();
  child.kill("SIGTERM");
  await child.status;
  await pumps;
  return chunks.join("");
}

/** The phases of a trace: compiles and exits per phase, in the runtime's own trace format. */
function phases(text: string, engine: "jsc" | "v8", names: string[]): Phase[] {
  return text.split(MARK).slice(0, names.length).map((part, i) => {
    let compiles = 0, compileMs = 0, exits = 0;
    const byFn = new Map<string, number>();
    if (engine === "jsc") {
      // "Optimized f#Hash:[…] using DFG with DFG into N bytes in 0.123 ms." (Baseline is no tier up)
      for (const m of part.matchAll(/Optimized (\S+?):\[.*? using (DFG|FTL) .*? in ([\d.]+) ms/g)) {
        compiles++;
        compileMs += Number(m[3]);
      }
      // "Speculation failure in name#HASHID:[…] @ exit #7 (bc#47, BadType)" (no name: anonymous)
      for (
        const m of part.matchAll(/Speculation failure in (\S*?)#\w{6}:\[.*?\((bc#\d+), (\w+)\)/g)
      ) {
        exits++;
        const key = `${m[1] || "(anonymous)"} (${m[3]})`;
        byFn.set(key, (byFn.get(key) ?? 0) + 1);
      }
    } else {
      for (
        const m of part.matchAll(
          /\[completed compiling .*?- took ([\d.]+), ([\d.]+), ([\d.]+) ms\]/g,
        )
      ) {
        compiles++;
        compileMs += Number(m[1]) + Number(m[2]) + Number(m[3]);
      }
      for (
        const m of part.matchAll(
          /\[bailout \(kind: [\w-]+, reason: ([^)]*)\): begin\. deoptimizing \S+ <JSFunction ([^ >]*)/g,
        )
      ) {
        exits++;
        const key = `${m[2] || "(anonymous)"} (${m[1]})`;
        byFn.set(key, (byFn.get(key) ?? 0) + 1);
      }
    }
    const top = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 5);
    return { phase: names[i], compiles, compileMs: Math.round(compileMs * 10) / 10, exits, top };
  });
}

const names = [
  "warm-up (to READY)",
  ...Array.from(
    { length: rounds },
    (_, r) => r === 0 ? `first ${n.toLocaleString("en-US")} joins` : `round ${r + 1}`,
  ),
];
const engine = runtime === "bun" ? "jsc" : "v8";
const runs = new Map<string, Phase[][]>();
for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const tree of rep % 2 ? [...trees].reverse() : trees) {
    const p = phases(await trace(tree), engine, names);
    runs.set(tree, [...runs.get(tree) ?? [], p]);
    console.log(
      `${tree} rep ${rep}: ` +
        p.map((x) => `${x.phase}: ${x.compiles} compiles (${x.compileMs} ms), ${x.exits} exits`)
          .join("; "),
    );
  }
}

const results = [...runs].map(([tree, reps]) => ({
  tree: treeLabel(tree),
  phases: names.map((phase, i) => ({
    phase,
    compiles: median(reps.map((r) => r[i].compiles)),
    compileMs: median(reps.map((r) => r[i].compileMs)),
    exits: median(reps.map((r) => r[i].exits)),
    // The run with the median exits: whose functions they were.
    top: [...reps].sort((a, b) => a[i].exits - b[i].exits)[reps.length >> 1][i].top,
  })),
}));
for (const r of results) {
  console.log(
    `${r.tree}: ` + r.phases.map((p) => `${p.phase} ${p.compiles}/${p.exits}`).join(", "),
  );
}
if (values.out) {
  writeResults(values.out, runtime, {
    runtime,
    method: `the engine's own traces (${
      engine === "jsc"
        ? "JavaScriptCore: reportCompileTimes, printEachOSRExit"
        : "V8: --trace-opt --trace-deopt"
    }) of a fresh dback server (bench/servers/dback.ts, ${values.users} users), cut at READY ` +
      `and after each of ${rounds} rounds of ${n} joins (raw load generator, 128 at a time); ` +
      `compiles: optimised ones (${
        engine === "jsc" ? "DFG and FTL" : "Maglev and Turbofan"
      }) with the time the engine reports; exits: ${
        engine === "jsc" ? "speculation failures" : "deoptimisations"
      }; median of ${values.reps} interleaved runs per checkout`,
    users: Number(values.users),
    results,
  }, bun);
}
