// Every scale-out benchmark table in the docs is the rendering of the committed results file it
// names (bench/cluster.ts --out): bench/README.md and docs/scale-out.md embed it between
// `<!-- cluster: FILE -->` markers, and link the file.
import assert from "node:assert/strict";
import { clusterBlocks, type ClusterResults, clusterTable } from "../../bench/_cluster_table.ts";
import { tableCells } from "../../bench/_big_guild_table.ts";

const ROOT = new URL("../../", import.meta.url);

for (const doc of ["bench/README.md", "docs/scale-out.md"]) {
  Deno.test(`${doc}: each scale-out table matches the results file it names`, async () => {
    const text = await Deno.readTextFile(new URL(doc, ROOT));
    const blocks = clusterBlocks(text);
    assert.ok(blocks.length > 0, `${doc} embeds no scale-out results`);
    for (const { file, table } of blocks) {
      assert.match(file, /^(\.\.\/)?(bench\/)?results\/[\w.-]+\.json$/);
      const results: ClusterResults = JSON.parse(
        await Deno.readTextFile(new URL(file.replace(/^(\.\.\/)?(bench\/)?/, "bench/"), ROOT)),
      );
      assert.ok(results.date && results.rows.length > 0, `${file}: date and rows`);
      assert.deepEqual(tableCells(table), tableCells(clusterTable(results)), `${doc}: ${file}`);
      assert.ok(text.includes(`](${file})`), `${doc} links ${file}`);
    }
  });
}

Deno.test("the scale-out table shows what the file holds (a changed figure changes the table)", () => {
  const row = {
    config: "1 process, no redis",
    frames: 200_000,
    expected: 200_000,
    framesPerSec: 37_181.6,
    joined: 1000,
    closed: 0,
    serverCpuPct: 30.2,
    redisCpuPct: 0,
    usPerFrame: 8.21,
    boxPct: 64.9,
  };
  const r: ClusterResults = {
    date: "2026-01-01T00:00:00Z",
    rows: [row, { ...row, config: "3 instances + redis", usPerFrame: 12.32, redisCpuPct: 1.26 }],
  };
  const table = clusterTable(r);
  assert.ok(table.includes("| 200,000 of 200,000 | 37,182 |"), table);
  assert.ok(table.includes("| 12.32 | 1.50× |"), table);
  r.rows[1].usPerFrame = 9;
  assert.notDeepEqual(tableCells(clusterTable(r)), tableCells(table));
});
