// The `big-guild` results as the Markdown table the docs show: bench/README.md and
// docs/operating.md embed it between `<!-- big-guild: <file> -->` and `<!-- /big-guild -->`
// markers, and tests/core/bench_results_test.ts checks that each embedded table is this
// rendering of the file it names (run `deno run -A bench/big_guild.ts --table FILE` to print it).

interface Herd {
  viewers: number;
  joined: number;
  allJoinedMs: number;
  joinP90Ms: number;
  rssBeforeMiB: number;
  rssGrowthMiB: number;
  dropped: number;
}
interface Churn {
  seconds: number;
  baselineRejoinP90Ms?: number;
  attackerGB: number;
  attackerJoins: number;
  othersRejoinP90Ms: number;
  /** Each run's figures, when the churn ran several times (the others are their medians). */
  runs?: Array<{ othersRejoinP90Ms: number; lockstepRejoinP90Ms?: number }>;
  /** All ten re-joining at the same instant (files from 2026-12-05 on). */
  lockstepRejoinP90Ms?: number;
}
interface Join {
  ok: boolean;
  joinBytes: number;
  joinMs: number;
}
/** The part of a results file the table shows. */
export interface BigGuildResults {
  date: string;
  results: Record<string, { herd: Herd; churn: Churn; join250k: Join }>;
}

const NAMES: Record<string, string> = {
  deno: "dback on Deno",
  "deno-node": "dback on Deno, Node transport",
  bun: "dback on Bun",
};
const n = (x: number) => x.toLocaleString("en-US");

/** Each run's figure, in the order they ran. */
function eachRun(
  runs: NonNullable<Churn["runs"]>,
  key: "othersRejoinP90Ms" | "lockstepRejoinP90Ms",
) {
  return runs.map((r) => n(r[key] ?? NaN)).join(", ") + " ms";
}

/** The Markdown table of one results file. */
export function bigGuildTable(r: BigGuildResults): string {
  const runtimes = Object.keys(r.results);
  const row = (what: string, target: string, cell: (k: string) => string) =>
    `| ${what} | ${runtimes.map(cell).join(" | ")} | ${target} |`;
  const x = (k: string) => r.results[k];
  return [
    `| ${r.date.slice(0, 10)} | ${runtimes.map((k) => NAMES[k] ?? k).join(" | ")} | target |`,
    `| --- | ${runtimes.map(() => "---").join(" | ")} | --- |`,
    row(
      "herd: viewers joined, dropped",
      "all, none",
      (k) => `${n(x(k).herd.joined)} of ${n(x(k).herd.viewers)}, ${n(x(k).herd.dropped)} dropped`,
    ),
    row(
      "herd: time until all have the join",
      "",
      (k) =>
        `${(x(k).herd.allJoinedMs / 1000).toFixed(1)} s (p90 ${
          (x(k).herd.joinP90Ms / 1000).toFixed(1)
        } s)`,
    ),
    row(
      "herd: peak RSS growth",
      "≤ 1.5 GiB",
      (k) =>
        `${n(Math.round(x(k).herd.rssGrowthMiB))} MiB (from ${
          n(Math.round(x(k).herd.rssBeforeMiB))
        } MiB)`,
    ),
    row(
      "churn: bytes to the attacker",
      "≤ 1 GB / 20 s",
      (k) =>
        `${x(k).churn.attackerGB.toFixed(2)} GB in ${x(k).churn.seconds} s (${
          n(x(k).churn.attackerJoins)
        } joins)`,
    ),
    row(
      "churn: other viewers' re-join p90",
      "< 100 ms",
      (k) => {
        const base = x(k).churn.baselineRejoinP90Ms;
        const runs = x(k).churn.runs;
        return `${n(x(k).churn.othersRejoinP90Ms)} ms` +
          (base === undefined ? "" : ` (${n(base)} ms without the attacker)`) +
          (runs ? `; median of ${runs.length} runs: ${eachRun(runs, "othersRejoinP90Ms")}` : "");
      },
    ),
    ...(runtimes.every((k) => x(k).churn.lockstepRejoinP90Ms !== undefined)
      ? [row(
        "ten viewers re-joining at the same instant: p90",
        "",
        (k) => {
          const runs = x(k).churn.runs;
          return `${n(x(k).churn.lockstepRejoinP90Ms!)} ms` +
            (runs
              ? `; median of ${runs.length} runs: ${eachRun(runs, "lockstepRejoinP90Ms")}`
              : "");
        },
      )]
      : []),
    row(
      "250,000-member join",
      "succeeds",
      (k) =>
        x(k).join250k.ok
          ? `whole (${(x(k).join250k.joinBytes / 1e6).toFixed(1)} MB) in ${
            (x(k).join250k.joinMs / 1000).toFixed(1)
          } s`
          : "failed",
    ),
  ].join("\n");
}

/** A Markdown table's cells, so that a table reformatted by `deno fmt` compares equal. */
export function tableCells(table: string): string[][] {
  return table.trim().split("\n").map((line) =>
    line.trim().replace(/^\||\|$/g, "").split("|").map((c) => {
      const cell = c.trim();
      return /^:?-+:?$/.test(cell) ? "---" : cell;
    })
  );
}
