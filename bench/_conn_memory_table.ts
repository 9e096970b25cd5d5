// The `conn_memory.ts` results as the Markdown table the docs show: the benchmark pages and
// docs/runtimes.md embed it between `<!-- conn-memory: <file> -->` and `<!-- /conn-memory -->`
// markers (bench/_doc_tables.ts), and a test checks that each embedded table is this rendering of
// the file it names (print it with `deno run -A bench/_conn_memory_table.ts FILE`).

/** KiB per connection, as one server measured itself. */
export interface Usage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

/** A `conn_memory.ts` results file (the parts the table shows). */
export interface ConnMemoryResults {
  date: string;
  clients: number;
  /** The user map's size; absent in the first, Deno-only files. */
  users?: number;
  /** Clients that joined and left before the baseline, when any. */
  warmup?: number;
  runs: Array<{ kind: string; run: number; result: { after1s: Usage; settled: Usage } }>;
}

const ROWS: Array<[string, "after1s" | "settled", keyof Usage]> = [
  ["RSS, 1 s after the last join", "after1s", "rss"],
  ["RSS, settled", "settled", "rss"],
  ["retained JS objects (`heapUsed`)", "after1s", "heapUsed"],
  ["committed heap (`heapTotal`), 1 s after", "after1s", "heapTotal"],
];

/** The runtimes a file may hold, in table order: dback's target name, the bare one's, a label. */
const PAIRS: Array<{ dback: string; bare: string; label: string }> = [
  { dback: "dback", bare: "raw-deno", label: "Deno (bare: `Deno.serve`)" },
  { dback: "dback-node", bare: "node-ws", label: "Node (bare: `ws`)" },
  { dback: "dback-bun", bare: "bun", label: "Bun (bare: `Bun.serve`)" },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function range(xs: number[]): string {
  const lo = Math.min(...xs).toFixed(1);
  const hi = Math.max(...xs).toFixed(1);
  return lo === hi ? lo : `${lo}–${hi}`;
}

/**
 * The table: each measure's range over the runs per server, and the ratio of
 * the medians. A file of the first kind (Deno only, no `users`) keeps its
 * original layout; one that measured several runtimes gets a row group each.
 */
export function connMemoryTable(r: ConnMemoryResults): string {
  const of = (kind: string, at: "after1s" | "settled", k: keyof Usage) =>
    r.runs.filter((x) => x.kind === kind).map((x) => x.result[at][k]);
  // Under 1 KiB (Bun's JS heap, which holds almost nothing of a bare socket) a ratio means nothing.
  const ratio = (dback: number[], bare: number[]) =>
    Math.abs(median(bare)) < 1 ? "—" : `${(median(dback) / median(bare)).toFixed(2)}×`;
  const clients = r.clients.toLocaleString("en-US");
  if (r.users === undefined) {
    const n = r.runs.filter((x) => x.kind === "dback").length;
    const lines = [
      `| KiB per idle joined connection (${clients} clients, ${n} runs) | bare \`Deno.serve\` | dback | dback ÷ bare (medians) |`,
      "| --- | --- | --- | --- |",
    ];
    for (const [label, at, k] of ROWS) {
      const raw = of("raw-deno", at, k);
      const dback = of("dback", at, k);
      const name = label.replace("committed heap", "committed V8 heap");
      lines.push(`| ${name} | ${range(raw)} | ${range(dback)} | ${ratio(dback, raw)} |`);
    }
    return lines.join("\n");
  }
  const runs = Math.max(...r.runs.map((x) => x.run));
  const warm = r.warmup ? `, after ${r.warmup.toLocaleString("en-US")} warm-up joins` : "";
  const lines = [
    `| runtime | KiB per idle joined connection (${clients} clients, ${runs} runs${warm}) | bare | dback | dback ÷ bare (medians) |`,
    "| --- | --- | --- | --- | --- |",
  ];
  for (const pair of PAIRS) {
    if (!r.runs.some((x) => x.kind === pair.dback) || !r.runs.some((x) => x.kind === pair.bare)) {
      continue;
    }
    for (const [label, at, k] of ROWS) {
      const bare = of(pair.bare, at, k);
      const dback = of(pair.dback, at, k);
      lines.push(
        `| ${pair.label} | ${label} | ${range(bare)} | ${range(dback)} | ${ratio(dback, bare)} |`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  console.log(connMemoryTable(JSON.parse(await Deno.readTextFile(Deno.args[0]))));
}
