// The scale-out benchmark's table shows what its results file holds (bench/cluster.ts --out).
// That each table the docs embed is the rendering of the file it names is checked, for every kind
// of table, by bench_results_test.ts.
import assert from "node:assert/strict";
import { type ClusterResults, clusterTable } from "../../bench/_cluster_table.ts";
import { tableCells } from "../../bench/_big_guild_table.ts";

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
