// The figures docs/runtimes.md gives for Deno's write buffer are the rendering of the committed
// results file they name (bench/deno_write_buffer.ts's table).
import assert from "node:assert/strict";
import {
  denoWriteBufferBlocks,
  type DenoWriteBufferResults,
  denoWriteBufferTable,
} from "../../bench/_deno_write_buffer_table.ts";
import { tableCells } from "../../bench/_big_guild_table.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("docs/runtimes.md: the Deno write-buffer table matches the results file it names", async () => {
  const text = await Deno.readTextFile(new URL("docs/runtimes.md", ROOT));
  const blocks = denoWriteBufferBlocks(text);
  assert.equal(blocks.length, 1);
  for (const { file, table } of blocks) {
    assert.match(file, /^\.\.\/bench\/results\/[\w.-]+\.json$/);
    const results: DenoWriteBufferResults = JSON.parse(
      await Deno.readTextFile(new URL(file.replace(/^\.\.\//, ""), ROOT)),
    );
    assert.deepEqual(tableCells(table), tableCells(denoWriteBufferTable(results)));
    assert.ok(text.includes(`](${file})`), `docs/runtimes.md links ${file}`);
  }
});

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
