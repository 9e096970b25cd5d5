// The table of bench/memory_bound.ts's results shows what the file holds (that docs embed it as
// rendered is checked with every other kind in bench_results_test.ts).
import assert from "node:assert/strict";
import {
  type MemoryBoundResults,
  type MemoryBoundRun,
  memoryBoundTable,
} from "../../bench/_memory_bound_table.ts";
import { tableCells } from "../../bench/_big_guild_table.ts";
import { DOC_TABLES } from "../../bench/_doc_tables.ts";

const run = (exact: number, admitted = 32): MemoryBoundRun => ({
  rssIdleMiB: 130,
  rssAfterFirstJoinMiB: 250,
  overIdleMiB: { sampled: exact - 50, exact },
  overFirstJoinMiB: { sampled: exact - 170, exact: exact - 120 },
  dropped: 32,
  admitted,
  refused: 40,
  firstRoundMs: 900,
});

const file = (build: string, exact: number, admitted?: number): MemoryBoundResults => ({
  date: "2026-01-01T00:00:00Z",
  build,
  results: {
    deno: { presence: run(exact, admitted), quiet: run(exact - 3, admitted) },
    bun: { presence: run(exact + 1000, admitted) },
  },
});

Deno.test("the memory-bound table shows what the file holds (a changed figure changes it)", () => {
  const r = file("this tree", 433);
  const table = memoryBoundTable(r);
  const cells = tableCells(table);
  assert.deepEqual(cells.find((c) => c[0] === "Deno (`Deno.serve`)" && c[1].startsWith("quiet")), [
    "Deno (`Deno.serve`)",
    "quiet guild (30 s)",
    "130 → 250 MiB",
    "430 MiB (380)",
    "310 MiB (260)",
    "32",
    "32",
  ]);
  // Thousands are grouped; a runtime or case the file lacks has no row.
  assert.ok(table.includes("| 1,433 MiB (1,383) |"), table);
  assert.equal(cells.filter((c) => c[0] === "Bun").length, 1);
  assert.ok(!table.includes("Node.js"));
  for (
    const change of [
      () => r.results.deno.presence.overIdleMiB.exact = 434,
      () => r.results.deno.presence.overFirstJoinMiB.sampled = 1,
      () => r.results.deno.quiet.admitted = 64,
      () => r.results.bun.presence.dropped = 0,
      () => r.results.bun.presence.rssAfterFirstJoinMiB = 251,
    ]
  ) {
    const was = tableCells(memoryBoundTable(r));
    change();
    assert.notDeepEqual(tableCells(memoryBoundTable(r)), was);
  }
});

Deno.test("the memory-bound table: another build's exact peak and admitted sockets beside it", () => {
  const after = file("this tree", 433);
  const before = file("without the charge", 1811, 64);
  delete (before.results.bun as Record<string, unknown>).presence;
  const cells = tableCells(DOC_TABLES["memory-bound"].render([after, before]));
  assert.deepEqual(cells[0].slice(-2), [
    "without the charge: peak over idle",
    "without the charge: admitted",
  ]);
  assert.deepEqual(
    cells.find((c) => c[1].startsWith("presence") && c[0].startsWith("Deno"))!
      .slice(-2),
    ["1,811 MiB (1,761)", "64"],
  );
  // A runtime the other build was not run on is a dash, not a figure.
  assert.deepEqual(cells.find((c) => c[0] === "Bun")!.slice(-2), ["–", "–"]);
  assert.throws(() => DOC_TABLES["memory-bound"].render([after, before, before]), /at most one/);
});
