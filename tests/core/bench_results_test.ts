// Every benchmark table in the docs is the rendering of the committed results file(s) it names:
// README.md, the benchmark pages (bench/README.md, bench/HISTORY.md) and docs/*.md embed tables between `<!-- KIND: FILE… -->` and
// `<!-- /KIND -->` markers, bench/_doc_tables.ts renders each kind, and nothing else may claim
// those figures. One test for every kind (big-guild, hide-offline, cluster, conn-memory, deno-write-buffer, peers,
// bench-run, memory-bound, join-cpu, jit-trace).
import assert from "node:assert/strict";
import type { BigGuildResults } from "../../bench/_big_guild_table.ts";
import { bigGuildTable } from "../../bench/_big_guild_table.ts";
import {
  blockCells,
  DOC_TABLES,
  docTableBlocks,
  resultsPath,
  tableCells,
} from "../../bench/_doc_tables.ts";
import { type HideOfflineResults, hideOfflineTable } from "../../bench/_hide_offline_table.ts";
import { type PeerResults, peerTable } from "../../bench/_peer_table.ts";
import { BENCH_PAGES } from "../../tools/toc.ts";

const ROOT = new URL("../../", import.meta.url);

const docs = [
  "README.md",
  ...BENCH_PAGES,
  ...[...Deno.readDirSync(new URL("docs/", ROOT))]
    .filter((e) => e.name.endsWith(".md")).map((e) => `docs/${e.name}`).sort(),
];

/** Kinds a doc must embed (so that deleting a block is noticed too). */
const EXPECTED: Record<string, string[]> = {
  "bench/README.md": [
    "big-guild",
    "hide-offline",
    "cluster",
    "conn-memory",
    "peers",
    "bench-run",
    "join-cpu",
    "jit-trace",
  ],
  "bench/HISTORY.md": ["big-guild", "conn-memory", "peers"],
  "docs/operating.md": ["big-guild", "memory-bound"],
  "docs/scale-out.md": ["cluster"],
  "docs/runtimes.md": ["conn-memory", "deno-write-buffer"],
};

for (const doc of docs) {
  Deno.test(`${doc}: each benchmark table matches the results file(s) it names`, async () => {
    const text = await Deno.readTextFile(new URL(doc, ROOT));
    const blocks = docTableBlocks(text);
    for (const kind of EXPECTED[doc] ?? []) {
      assert.ok(blocks.some((b) => b.kind === kind), `${doc} embeds no ${kind} results`);
    }
    // A marker whose block is not closed is not checked: refuse it.
    const opened = [...text.matchAll(/^<!-- ([a-z][\w-]*): /gm)].filter((m) => m[1] in DOC_TABLES);
    assert.equal(opened.length, blocks.length, `${doc}: an unclosed table marker`);
    for (const { kind, files, table } of blocks) {
      const spec = DOC_TABLES[kind];
      assert.ok(spec, `${doc}: unknown table kind ${kind}`);
      assert.ok(spec.many || files.length === 1, `${doc}: ${kind} names one file`);
      const results = [];
      for (const file of files) {
        assert.match(file, /^(\.\.\/)?(bench\/)?results\/[\w.-]+\.json$/);
        const r = JSON.parse(await Deno.readTextFile(new URL(resultsPath(file), ROOT)));
        assert.ok(r.date, `${file}: date`);
        results.push(r);
        // The text links every file it names.
        assert.ok(text.includes(`](${file})`), `${doc} links ${file}`);
      }
      const rendered = spec.render(results);
      // A file the renderer cannot read (no runs, a renamed field) must not pass as an empty
      // table or a table of NaN: the rendering has a row of figures and no non-number.
      const rows = blockCells(rendered).filter((r) => r.length > 1 && !r.includes("---"));
      assert.ok(rows.length >= 2, `${doc}: ${kind} ${files.join(" ")} renders no rows`);
      assert.doesNotMatch(rendered, /NaN|Infinity|undefined/, `${doc}: ${kind} ${files.join(" ")}`);
      assert.deepEqual(
        blockCells(table),
        blockCells(rendered),
        `${doc}: ${kind} ${files.join(" ")}`,
      );
    }
  });
}

Deno.test("every results file a doc links exists", async () => {
  for (const doc of docs) {
    const text = await Deno.readTextFile(new URL(doc, ROOT));
    for (const m of text.matchAll(/\]\(((?:\.\.\/)?(?:bench\/)?results\/[\w.-]+\.json)\)/g)) {
      const path = new URL(m[1], new URL(doc, ROOT));
      await Deno.stat(path).catch(() => assert.fail(`${doc} links ${m[1]}, which is missing`));
    }
  }
});

Deno.test("the big-guild table shows what the file holds (a changed figure changes the table)", () => {
  const r: BigGuildResults = {
    date: "2026-01-01T00:00:00Z",
    results: {
      deno: {
        herd: {
          viewers: 150,
          joined: 150,
          allJoinedMs: 7684,
          joinP90Ms: 7681,
          rssBeforeMiB: 264,
          rssGrowthMiB: 2914,
          dropped: 0,
        },
        churn: { seconds: 20, attackerGB: 0.5, attackerJoins: 40, othersRejoinP90Ms: 590 },
        join250k: { ok: true, joinBytes: 33_250_093, joinMs: 4459 },
      },
    },
  };
  const table = bigGuildTable(r);
  assert.ok(table.includes("2,914 MiB"));
  assert.ok(table.includes("whole (33.3 MB) in 4.5 s"));
  r.results.deno.herd.rssGrowthMiB = 100;
  assert.notDeepEqual(tableCells(bigGuildTable(r)), tableCells(table));
});

Deno.test("the hide-offline table: without and with the policy side by side; files in that order", () => {
  const file = (hideOfflineAbove: number, joinBytes: number): HideOfflineResults => ({
    date: "2026-01-01T00:00:00Z",
    guild: { members: 100_000, offline: 0.8, hideOfflineAbove },
    results: {
      deno: {
        herd: {
          viewers: 150,
          joined: 150,
          joinBytes,
          allJoinedMs: 2400,
          rssBeforeMiB: 250,
          rssGrowthMiB: 1000,
          dropped: 0,
        },
        churn: { seconds: 20, attackerGB: 0.33, attackerJoins: 50, othersRejoinP90Ms: 16 },
      },
    },
  });
  const off = file(0, 13_400_000);
  const on = file(10_000, 2_700_000);
  const table = hideOfflineTable([off, on]);
  assert.ok(table.includes("Deno, hideOfflineAbove 10,000"));
  assert.ok(table.includes("| 13.4 MB | 2.7 MB |"), table);
  assert.throws(() => hideOfflineTable([on, off]), /first file runs without the policy/);
  on.results.deno.churn.attackerGB = 0.07;
  assert.notDeepEqual(tableCells(hideOfflineTable([off, on])), tableCells(table));
});

Deno.test("the peers table: a cell per run, ratios to the runtime's bare peer, verdicts on the median", () => {
  const row = (impl: string, run: number, cpu: number, mem: number, joins: number) => ({
    impl,
    n: 1000,
    run,
    loadAvg1: 0.5 * run,
    main: {
      cpuPerFrameUs: cpu,
      rssPerConnKiB: mem,
      join: { joinsPerS: joins },
      rejoin: { joinsPerS: joins * 2 },
    },
  });
  const a: PeerResults = {
    date: "2026-01-01T00:00:00Z",
    rows: [
      row("dback", 1, 10, 40, 1800),
      row("raw-deno", 1, 10, 30, 2000),
      row("dback", 2, 12, 40, 2000),
      row("raw-deno", 2, 10, 40, 2000),
    ],
  };
  const table = peerTable([a]);
  const cells = tableCells(table);
  const dback = cells.find((c) => c[1] === "dback on Deno")!;
  assert.deepEqual(dback.slice(0, 11), [
    "1,000",
    "dback on Deno",
    "10.00 / 12.00",
    "1.00× / 1.20×",
    "40.0 / 40.0",
    "1.33× / 1.00×",
    "1800 / 2000",
    "0.90× / 1.00×",
    "3600 / 4000",
    "0.90× / 1.00×",
    "0.5 / 1.0",
  ]);
  // Medians of the per-run ratios: CPU 1.10 > 1.05, memory 1.17 > 1.15, joins 0.95 ≥ 0.9.
  assert.equal(
    dback[11],
    "CPU ≤ 1.05: 1.10× **missed**; mem ≤ 1.15: 1.17× **missed**; joins ≥ 0.9: 0.95× met; warm joins ≥ 0.9: 0.95× met",
  );
  assert.equal(cells.find((c) => c[1] === "bare `Deno.serve`")![11], "peer");
  // Files of different servers side by side: each server's cells are its own runs only.
  const bun: PeerResults = {
    rows: [row("dback-bun", 1, 6, 12, 5000), row("bun", 1, 5, 8, 5000)],
  };
  const both = tableCells(peerTable([a, bun]));
  assert.equal(both.find((c) => c[1] === "dback on Bun")![2], "6.00");
  assert.equal(both.find((c) => c[1] === "dback on Deno")![2], "10.00 / 12.00");
  // A run without results is a dash in every cell, and the last cell says why.
  const gone: PeerResults = {
    rows: [{ impl: "dback-bun", n: 1000, unavailable: "zod not installed for Bun" }, bun.rows[1]],
  };
  const lost = tableCells(peerTable([gone])).find((c) => c[1] === "dback on Bun")!;
  assert.equal(lost[2], "–");
  assert.equal(
    lost[11],
    "CPU ≤ 1.05: –; mem ≤ 2: –; joins ≥ 0.9: –; run 1 unavailable",
  );
  // Two files are two runs, in the order named.
  const b: PeerResults = {
    rows: a.rows.filter((r) => r.run === 2).map((r) => ({ ...r, run: undefined })),
  };
  const c: PeerResults = {
    rows: a.rows.filter((r) => r.run === 1).map((r) => ({ ...r, run: undefined })),
  };
  assert.equal(tableCells(peerTable([c, b]))[2][2], "10.00 / 12.00");
  a.rows[2].main!.cpuPerFrameUs = 10.5;
  assert.notDeepEqual(tableCells(peerTable([a])), cells);
});

Deno.test("the bench-run tables show what the file holds (a changed figure changes them)", async () => {
  const file = JSON.parse(
    await Deno.readTextFile(new URL("bench/results/2026-12-04-node-transport.json", ROOT)),
  );
  const md = DOC_TABLES["bench-run"].render([file]);
  assert.ok(md.includes("**[1000 clients] CPU per delivered frame"), md.slice(0, 200));
  assert.ok(md.includes("| dback-node | 75000 | 10.04 |"), md.slice(0, 400));
  // A title reflowed by the formatter still compares equal.
  assert.deepEqual(blockCells(md.replace("fixed rate (", "fixed rate\n(")), blockCells(md));
  file.rows[0].main.cpuPerFrameUs = 9;
  assert.notDeepEqual(blockCells(DOC_TABLES["bench-run"].render([file])), blockCells(md));
});
