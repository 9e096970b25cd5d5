// The `deno_write_buffer.ts` results as the Markdown table docs/runtimes.md embeds between
// `<!-- deno-write-buffer: <file> -->` and `<!-- /deno-write-buffer -->` markers (a kind of
// bench/_doc_tables.ts; `deno run -A bench/deno_write_buffer.ts --table FILE` prints it).

interface Run {
  writev: boolean;
  frameBytes: number;
  frames: number;
  keptPerSocketMiB: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssAfterCloseMiB: number;
}
/** The part of a results file the table shows. */
export interface DenoWriteBufferResults {
  date: string;
  note: string;
  runs: Run[];
}

const mb = (bytes: number) => `${(bytes / 1e6).toLocaleString("en-US")} MB`;

/** The Markdown table of one results file. */
export function denoWriteBufferTable(r: DenoWriteBufferResults): string {
  return [
    `| ${
      r.date.slice(0, 10)
    }: each client is sent | vectored writes | RSS kept per open socket | peak RSS (from) | RSS once all closed |`,
    "| --- | --- | --- | --- | --- |",
    ...r.runs.map((x) =>
      `| ${
        x.frames === 1 ? `one ${mb(x.frameBytes)} frame` : `${x.frames} × ${mb(x.frameBytes)}`
      } | ${x.writev ? "on" : "off (Deno's default)"} | ${x.keptPerSocketMiB.toFixed(1)} MiB | ${
        Math.round(x.rssPeakMiB)
      } MiB (${Math.round(x.rssBeforeMiB)}) | ${Math.round(x.rssAfterCloseMiB)} MiB |`
    ),
  ].join("\n");
}
