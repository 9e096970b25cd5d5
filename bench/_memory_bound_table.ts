// The `memory_bound.ts` results as the Markdown table docs/operating.md embeds between
// `<!-- memory-bound: FILE [BEFORE] -->` and `<!-- /memory-bound -->` markers (a kind of
// bench/_doc_tables.ts; `deno run -A bench/memory_bound.ts --table FILE [BEFORE]` prints it).
// BEFORE, when named, is the same benchmark against another build (its `build` says which): its
// exact peak and admitted sockets go in two more columns.

/** Growth of the server's RSS in MiB: as sampled and the exact peak (VmHWM). */
export interface Growth {
  sampled: number;
  exact: number;
}

/** One runtime, one case. */
export interface MemoryBoundRun {
  rssIdleMiB: number;
  rssAfterFirstJoinMiB: number;
  overIdleMiB: Growth;
  overFirstJoinMiB: Growth;
  dropped: number;
  admitted: number;
  refused: number;
  firstRoundMs: number;
}

/** A `memory_bound.ts` results file (the parts the table shows). */
export interface MemoryBoundResults {
  date: string;
  build: string;
  results: Record<string, Record<string, MemoryBoundRun>>;
}

const RUNTIMES: Array<[string, string]> = [
  ["deno", "Deno (`Deno.serve`)"],
  ["deno-node", "Deno with `--transport node`"],
  ["bun", "Bun"],
  ["node", "Node.js"],
];
const CASES: Array<[string, string]> = [
  ["presence", "presence every 100 ms (30 s + 20 s)"],
  ["quiet", "quiet guild (30 s)"],
];

const n = (x: number) => x.toLocaleString("en-US");
const growth = (g: Growth) => `${n(g.exact)} MiB (${n(g.sampled)})`;

/** The Markdown table of one results file, and of the same benchmark on another build beside it. */
export function memoryBoundTable(r: MemoryBoundResults, before?: MemoryBoundResults): string {
  const extra = before
    ? [` ${before.build}: peak over idle | ${before.build}: admitted |`, " --- | --- |"]
    : ["", ""];
  const rows = RUNTIMES.filter(([rt]) => r.results[rt]).flatMap(([rt, label]) =>
    CASES.filter(([c]) => r.results[rt][c]).map(([c, what]) => {
      const x = r.results[rt][c];
      const b = before?.results[rt]?.[c];
      const more = !before ? "" : b ? ` ${growth(b.overIdleMiB)} | ${n(b.admitted)} |` : " – | – |";
      return `| ${label} | ${what} | ${n(x.rssIdleMiB)} → ${n(x.rssAfterFirstJoinMiB)} MiB | ${
        growth(x.overIdleMiB)
      } | ${growth(x.overFirstJoinMiB)} | ${n(x.dropped)} | ${n(x.admitted)} |${more}`;
    })
  );
  return [
    `| ${
      r.date.slice(0, 10)
    }: runtime | case | RSS idle → after the first join | peak growth over idle: exact (sampled) | over the first join: exact (sampled) | dropped | admitted |${
      extra[0]
    }`,
    `| --- | --- | --- | --- | --- | --- | --- |${extra[1]}`,
    ...rows,
  ].join("\n");
}
