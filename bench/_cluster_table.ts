// The scale-out benchmark's table, rendered from a results file of bench/cluster.ts
// (`--out`): what the script prints and what the docs embed between
// `<!-- cluster: FILE -->` and `<!-- /cluster -->`, so a documented figure is
// always the committed file's.

/** One configuration's row of a results file. */
export interface ClusterRow {
  config: string;
  /** Broadcast frames the viewers received in the window. */
  frames: number;
  /** Broadcasts × viewers. */
  expected: number;
  framesPerSec: number;
  joined: number;
  /** Viewers the server closed before the end (a slow client dropped would show here). */
  closed: number;
  serverCpuPct: number;
  redisCpuPct: number;
  usPerFrame: number;
  boxPct: number;
}

/** A results file of bench/cluster.ts (the fields the table uses). */
export interface ClusterResults {
  date: string;
  rows: ClusterRow[];
}

/** The Markdown table of a results file (ratios against its one-process row, when it has one). */
export function clusterTable(r: ClusterResults): string {
  const base = r.rows.find((row) => row.config.startsWith("1 process"));
  const n = (v: number) => Math.round(v).toLocaleString("en");
  const lines = [
    "| configuration | joined | dropped | frames delivered | frames/s | servers CPU | redis CPU | CPU µs per frame | vs 1 process | box busy |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const row of r.rows) {
    const ratio = base ? (row.usPerFrame / base.usPerFrame).toFixed(2) + "×" : "-";
    lines.push(
      `| ${row.config} | ${row.joined} | ${row.closed} | ${n(row.frames)} of ${n(row.expected)} | ${
        n(row.framesPerSec)
      } | ${row.serverCpuPct.toFixed(0)}% | ${row.redisCpuPct.toFixed(1)}% | ${
        row.usPerFrame.toFixed(2)
      } | ${ratio} | ${row.boxPct.toFixed(0)}% |`,
    );
  }
  return lines.join("\n");
}
