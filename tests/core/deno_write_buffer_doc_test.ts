// The table of bench/deno_write_buffer.ts's results shows what the file holds (that docs embed
// it as rendered is checked with every other kind in bench_results_test.ts).
import assert from "node:assert/strict";
import {
  type DenoWriteBufferResults,
  denoWriteBufferTable,
} from "../../bench/_deno_write_buffer_table.ts";
import { tableCells } from "../../bench/_big_guild_table.ts";

Deno.test("the write-buffer table shows what the file holds", () => {
  const run = {
    writev: false,
    frameBytes: 13_000_000,
    frames: 1,
    keptPerSocketMiB: 12.4,
    rssBeforeMiB: 36,
    rssPeakMiB: 1306,
    rssAfterCloseMiB: 70,
  };
  const r: DenoWriteBufferResults = { date: "2026-01-01T00:00:00Z", note: "", runs: [run] };
  const table = denoWriteBufferTable(r);
  assert.ok(table.includes("one 13 MB frame") && table.includes("12.4 MiB"), table);
  run.keptPerSocketMiB = 0.1;
  assert.notDeepEqual(tableCells(denoWriteBufferTable(r)), tableCells(table));
});
