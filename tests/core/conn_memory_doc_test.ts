// The per-connection memory table shows what its results file holds (bench/_conn_memory_table.ts),
// and in every results file that measured a pair of servers, both sent the same frames. That each
// table the docs embed is the rendering of the file it names is checked, for every kind of table,
// by bench_results_test.ts.
import assert from "node:assert/strict";
import { tableCells } from "../../bench/_big_guild_table.ts";
import { type ConnMemoryResults, connMemoryTable } from "../../bench/_conn_memory_table.ts";

const ROOT = new URL("../../", import.meta.url);

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

Deno.test("the conn-memory table of several runtimes: a row group per runtime, ratios of the medians", () => {
  const u = (rss: number) => ({ rss, heapUsed: 2, heapTotal: 4 });
  const run = (kind: string, run: number, rss: number) => ({
    kind,
    run,
    result: { after1s: u(rss), settled: u(rss) },
  });
  const r: ConnMemoryResults = {
    date: "2026-01-01T00:00:00Z",
    clients: 1000,
    users: 4,
    runs: [
      run("raw-deno", 1, 30),
      run("dback", 1, 33),
      run("raw-deno", 2, 32),
      run("dback", 2, 35),
      run("bun", 1, 6),
      run("dback-bun", 1, 12),
    ],
  };
  const table = connMemoryTable(r);
  assert.ok(table.includes("(1,000 clients, 2 runs)"), table);
  assert.ok(
    table.includes(
      "| Deno (bare: `Deno.serve`) | RSS, 1 s after the last join | 30.0–32.0 | 33.0–35.0 | 1.10× |",
    ),
    table,
  );
  assert.ok(
    table.includes("| Bun (bare: `Bun.serve`) | RSS, settled | 6.0 | 12.0 | 2.00× |"),
    table,
  );
  assert.ok(!table.includes("Node"), "no row for a runtime the file did not measure");
  r.runs[4].result.after1s.heapUsed = 0.2;
  assert.ok(
    connMemoryTable(r).includes(
      "| Bun (bare: `Bun.serve`) | retained JS objects (`heapUsed`) | 0.2 | 2.0 | — |",
    ),
    "no ratio over a bare figure under 1 KiB",
  );
  r.warmup = 200;
  assert.ok(connMemoryTable(r).includes("(1,000 clients, 2 runs, after 200 warm-up joins)"));
  r.runs[5].result.settled.rss = 13;
  assert.notDeepEqual(tableCells(connMemoryTable(r)), tableCells(table));
});

Deno.test("conn-memory results: both servers of a pair sent the same server-list and server-join bytes", async () => {
  const pairs = [["raw-deno", "dback"], ["node-ws", "dback-node"], ["bun", "dback-bun"]];
  let checked = 0;
  for await (const e of Deno.readDir(new URL("bench/results/", ROOT))) {
    if (!/conn-memory.*\.json$/.test(e.name)) continue;
    const r = JSON.parse(await Deno.readTextFile(new URL(`bench/results/${e.name}`, ROOT)));
    if (r.users === undefined) continue; // the first files, from before the frames were compared
    for (const run of new Set<number>(r.runs.map((x: { run: number }) => x.run))) {
      for (const [bare, dback] of pairs) {
        const frames = (kind: string) =>
          r.runs.find((x: { kind: string; run: number }) => x.kind === kind && x.run === run)
            ?.result.frameBytes;
        const [a, b] = [frames(bare), frames(dback)];
        if (!a && !b) continue;
        assert.ok(a && b, `${e.name} run ${run}: ${bare} and ${dback} both measured`);
        assert.deepEqual(a, b, `${e.name} run ${run}: ${bare} vs ${dback}`);
        assert.ok(a.list > 0 && a.join > a.list, `${e.name}: frame sizes recorded`);
        checked++;
      }
    }
  }
  assert.ok(checked > 0, "no results file compares frames");
});
