// Every per-connection memory table in the docs is the rendering of the committed results file it
// names (bench/_conn_memory_table.ts), so no figure there can drift from its measurement.
import assert from "node:assert/strict";
import { tableCells } from "../../bench/_big_guild_table.ts";
import {
  connMemoryBlocks,
  type ConnMemoryResults,
  connMemoryTable,
} from "../../bench/_conn_memory_table.ts";

const ROOT = new URL("../../", import.meta.url);

for (const doc of ["bench/README.md", "docs/runtimes.md"]) {
  Deno.test(`${doc}: each conn-memory table matches the results file it names`, async () => {
    const text = await Deno.readTextFile(new URL(doc, ROOT));
    const blocks = connMemoryBlocks(text);
    assert.ok(blocks.length > 0, `${doc} embeds no conn-memory results`);
    for (const { file, table } of blocks) {
      assert.match(file, /^(\.\.\/)?(bench\/)?results\/[\w.-]+\.json$/);
      const results: ConnMemoryResults = JSON.parse(
        await Deno.readTextFile(new URL(file.replace(/^(\.\.\/)?(bench\/)?/, "bench/"), ROOT)),
      );
      assert.ok(results.date && results.runs.length > 0, `${file}: date and runs`);
      assert.deepEqual(tableCells(table), tableCells(connMemoryTable(results)), `${doc}: ${file}`);
      assert.ok(text.includes(`](${file})`), `${doc} links ${file}`);
    }
  });
}

Deno.test("the conn-memory table shows what the file holds (a changed figure changes it)", () => {
  const u = (rss: number) => ({ rss, heapUsed: 5, heapTotal: 10 });
  const r: ConnMemoryResults = {
    date: "2026-01-01T00:00:00Z",
    clients: 1000,
    runs: [
      { kind: "raw-deno", run: 1, result: { after1s: u(30), settled: u(30) } },
      { kind: "dback", run: 1, result: { after1s: u(45), settled: u(46) } },
    ],
  };
  const table = connMemoryTable(r);
  assert.ok(table.includes("| 30.0 | 45.0 | 1.50× |"), table);
  r.runs[1].result.after1s.rss = 33;
  assert.notDeepEqual(tableCells(connMemoryTable(r)), tableCells(table));
});
