// The `hideOfflineAbove` comparison as the Markdown table bench/README.md shows: two `big-guild`
// results files of the same guild (`--offline`), the first without the policy and the second with
// it (`--hide-offline-above`), side by side per runtime. The docs embed it between
// `<!-- hide-offline: <without> <with> -->` and `<!-- /hide-offline -->` markers;
// tests/core/bench_results_test.ts checks it is this rendering of the files it names.

interface Herd {
  viewers: number;
  joined: number;
  joinBytes: number;
  allJoinedMs: number;
  rssBeforeMiB: number;
  rssGrowthMiB: number;
  dropped: number;
}
interface Churn {
  seconds: number;
  attackerGB: number;
  attackerJoins: number;
  othersRejoinP90Ms: number;
}
/** The part of a `big-guild` results file run with `--offline` the table shows. */
export interface HideOfflineResults {
  date: string;
  guild: { members: number; offline: number; hideOfflineAbove: number };
  results: Record<string, { herd: Herd; churn: Churn }>;
}

const NAMES: Record<string, string> = {
  deno: "Deno",
  "deno-node": "Deno, Node transport",
  bun: "Bun",
};
const n = (x: number) => x.toLocaleString("en-US");

/** The Markdown table of a run without the policy (`off`) and one with it (`on`). */
export function hideOfflineTable([off, on]: HideOfflineResults[]): string {
  if (off.guild.hideOfflineAbove !== 0 || on.guild.hideOfflineAbove === 0) {
    throw new Error("hide-offline: the first file runs without the policy, the second with it");
  }
  const runtimes = Object.keys(off.results).filter((k) => k in on.results);
  const cols = runtimes.flatMap((k) => [[k, off], [k, on]] as const);
  const row = (what: string, cell: (h: Herd, c: Churn) => string) =>
    `| ${what} | ${
      cols.map(([k, r]) => cell(r.results[k].herd, r.results[k].churn)).join(" | ")
    } |`;
  return [
    `| ${on.date.slice(0, 10)}, ${n(on.guild.members)} members, ${
      Math.round(on.guild.offline * 100)
    } % offline | ${
      cols.map(([k, r]) =>
        `${NAMES[k] ?? k}, ${r === off ? "off" : `hideOfflineAbove ${n(r.guild.hideOfflineAbove)}`}`
      ).join(" | ")
    } |`,
    `| --- | ${cols.map(() => "---").join(" | ")} |`,
    row("`server-join` frame", (h) => `${(h.joinBytes / 1e6).toFixed(1)} MB`),
    row(
      "herd: viewers joined, dropped",
      (h) => `${n(h.joined)} of ${n(h.viewers)}, ${n(h.dropped)}`,
    ),
    row("herd: time until all have the join", (h) => `${(h.allJoinedMs / 1000).toFixed(1)} s`),
    row(
      "herd: peak RSS growth",
      (h) => `${n(Math.round(h.rssGrowthMiB))} MiB (from ${n(Math.round(h.rssBeforeMiB))} MiB)`,
    ),
    row(
      "churn: bytes to the attacker",
      (_, c) => `${c.attackerGB.toFixed(2)} GB in ${c.seconds} s (${n(c.attackerJoins)} joins)`,
    ),
    row("churn: other viewers' re-join p90", (_, c) => `${n(c.othersRejoinP90Ms)} ms`),
  ].join("\n");
}
