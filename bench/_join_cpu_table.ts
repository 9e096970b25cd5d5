// The `join_cpu.ts` results as the Markdown table bench/README.md embeds between
// `<!-- join-cpu: <file> -->` and `<!-- /join-cpu -->` markers (bench/_doc_tables.ts), checked
// against the file it names like every other table (print it with
// `deno run -A bench/_join_cpu_table.ts FILE`).

/** Median µs of server CPU per join: all threads, the JavaScript one, the JIT compilers'. */
interface Cost {
  total: number;
  main: number;
  jit: number;
}

/** A `join_cpu.ts` results file (the parts the table shows). */
export interface JoinCpuResults {
  date: string;
  users: number;
  results: Array<{
    server: string;
    tree: string;
    cold: Cost;
    warm: Cost;
    loads: number[][];
    /** Spawn to ready, ms, and the CPU ms used by then (files from before they were recorded lack them). */
    startMs?: number;
    startCpuMs?: number;
    /** With frame windows: µs of CPU per delivered frame, per start's counted windows, and the median. */
    framesUs?: number[][];
    frameUs?: number;
  }>;
}

const NAMES: Record<string, string> = {
  "dback-bun": "dback on Bun",
  bun: "bare `Bun.serve`",
  dback: "dback on Deno",
  "raw-deno": "bare `Deno.serve`",
  "dback-node": "dback on Node",
  "node-ws": "bare `ws` on Node",
};
const BARE = new Set(["bun", "raw-deno", "node-ws"]);
const f = (x: number) => x.toFixed(1);

/** The Markdown table of one results file; `× bare` is against the bare server of the same file. */
export function joinCpuTable(r: JoinCpuResults): string {
  const bare = r.results.find((x) => BARE.has(x.server));
  // V8's worker threads compile and collect garbage alike: on Deno and Node no thread is the JIT's alone.
  const jit = (x: JoinCpuResults["results"][number], c: Cost) =>
    x.server === "dback-bun" || x.server === "bun" ? f(c.jit) : "—";
  const times = (x: number, of: number | undefined) => of ? `${(x / of).toFixed(2)}×` : "—";
  const loads = r.results.flatMap((x) => x.loads.map((l) => l[0]));
  const start = r.results.some((x) => x.startMs !== undefined);
  const ready = (x: JoinCpuResults["results"][number]) =>
    start ? ` ${x.startMs ?? "—"} (${x.startCpuMs ?? "—"}) |` : "";
  const framed = r.results.some((x) => x.frameUs !== undefined);
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const frame = (x: JoinCpuResults["results"][number]) =>
    framed
      ? ` ${x.frameUs?.toFixed(2) ?? "—"} (${
        (x.framesUs ?? []).map((w) => mid(w).toFixed(2)).join(" / ")
      }) |`
      : "";
  return [
    `| ${
      r.date.slice(0, 10)
    }: µs of server CPU per join (${r.users} users) | code | cold: all threads (JavaScript thread, JIT) | warm: all threads (JavaScript thread, JIT) | warm JavaScript thread × bare |${
      start ? " ready: ms from spawn (CPU ms) |" : ""
    }${framed ? " µs CPU per delivered frame: median (each start) |" : ""}`,
    `| --- | --- | ---: | ---: | ---: |${start ? " ---: |" : ""}${framed ? " ---: |" : ""}`,
    ...r.results.map((x) =>
      `| ${NAMES[x.server] ?? x.server} | ${BARE.has(x.server) ? "—" : x.tree} | ${
        f(x.cold.total)
      } (${f(x.cold.main)}, ${jit(x, x.cold)}) | ${f(x.warm.total)} (${f(x.warm.main)}, ${
        jit(x, x.warm)
      }) | ${BARE.has(x.server) ? "1.00×" : times(x.warm.main, bare?.warm.main)} |${ready(x)}${
        frame(x)
      }`
    ),
    `| 1-minute load average | | ${Math.min(...loads).toFixed(1)}–${
      Math.max(...loads).toFixed(1)
    } | | |${start ? " |" : ""}${framed ? " |" : ""}`,
  ].join("\n");
}

if (import.meta.main) {
  console.log(joinCpuTable(JSON.parse(Deno.readTextFileSync(Deno.args[0]))));
}
