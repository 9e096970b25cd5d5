// Every kind of benchmark table the docs embed from a committed results file, in one place: a
// Markdown text carries `<!-- KIND: FILE [FILE…] -->`, the table, `<!-- /KIND -->`, and the
// table must be this module's rendering of the file(s) it names (one test checks every doc for
// every kind). Add a kind here with its renderer; nothing else needs to change.

import { bigGuildTable, tableCells } from "./_big_guild_table.ts";
import { clusterTable } from "./_cluster_table.ts";
import { connMemoryTable } from "./_conn_memory_table.ts";
import { denoWriteBufferTable } from "./_deno_write_buffer_table.ts";
import { joinCpuTable } from "./_join_cpu_table.ts";
import { jitTraceTable } from "./_jit_trace_table.ts";
import { memoryBoundTable } from "./_memory_bound_table.ts";
import { hideOfflineTable } from "./_hide_offline_table.ts";
import { peerTable } from "./_peer_table.ts";
import { render } from "./report.ts";
import { threadTable } from "./_thread_table.ts";

export { tableCells };

/** A kind of embedded table: how many files its marker names, and its rendering of them. */
interface Kind {
  many: boolean;
  // deno-lint-ignore no-explicit-any
  render: (files: any[]) => string;
}

/** The kinds of embedded tables, by marker name. */
export const DOC_TABLES: Record<string, Kind> = {
  "big-guild": { many: false, render: ([r]) => bigGuildTable(r) },
  cluster: { many: false, render: ([r]) => clusterTable(r) },
  "conn-memory": { many: false, render: ([r]) => connMemoryTable(r) },
  "deno-write-buffer": { many: false, render: ([r]) => denoWriteBufferTable(r) },
  "join-cpu": { many: false, render: ([r]) => joinCpuTable(r) },
  // What the engine compiled and threw away while a fresh server warmed up and took its first joins.
  "jit-trace": { many: false, render: ([r]) => jitTraceTable(r) },
  // The memory-bound attack per runtime; a second file, the same on another build, beside it.
  "memory-bound": {
    many: true,
    render: (rs) => {
      if (rs.length > 2) throw new Error("memory-bound: a file and at most one to compare");
      return memoryBoundTable(rs[0], rs[1]);
    },
  },
  // A big-guild run without hideOfflineAbove and one with it (the same --offline share).
  "hide-offline": { many: true, render: (rs) => hideOfflineTable(rs) },
  peers: { many: true, render: (rs) => peerTable(rs) },
  // The fixed-rate CPU windows of peers runs, by kind of thread.
  threads: { many: true, render: (rs) => threadTable(rs) },
  // Every table of one `deno task bench` run, as its terminal report shows them.
  "bench-run": { many: false, render: ([r]) => render({ runs: 1, ...r.options }, r.rows).md },
};

/** One embedded table: its kind, the results files its marker names, and the table. */
export interface DocTable {
  kind: string;
  files: string[];
  table: string;
}

/** Every `<!-- KIND: FILE… -->` … `<!-- /KIND -->` block of a Markdown text. */
export function docTableBlocks(markdown: string): DocTable[] {
  const re = /<!-- ([a-z][\w-]*): ([^\n]+?) -->\n([\s\S]*?)\n<!-- \/\1 -->/g;
  return [...markdown.matchAll(re)].map((m) => ({
    kind: m[1],
    files: m[2].trim().split(/\s+/),
    table: m[3].trim(),
  }));
}

/**
 * What a block shows, so that `deno fmt` reflowing it compares equal: each table line's cells,
 * and each other paragraph (a table's title, a list) as one line with its spaces collapsed.
 */
export function blockCells(block: string): string[][] {
  return block.trim().split(/\n\s*\n/).flatMap((para) =>
    para.trimStart().startsWith("|") ? tableCells(para) : [[para.trim().replace(/\s+/g, " ")]]
  );
}

/** A link or marker path (`results/x.json`, `../bench/results/x.json`) from the repository root. */
export function resultsPath(file: string): string {
  return file.replace(/^(\.\.\/)?(bench\/)?/, "bench/");
}
