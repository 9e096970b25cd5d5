// Every big-guild figure in the docs is the rendering of the committed results file it names:
// bench/README.md and docs/operating.md embed bench/_big_guild_table.ts's table of a
// bench/results/*.json file, and nothing else may claim those figures.
import assert from "node:assert/strict";
import {
  bigGuildBlocks,
  type BigGuildResults,
  bigGuildTable,
  tableCells,
} from "../../bench/_big_guild_table.ts";

const ROOT = new URL("../../", import.meta.url);

for (const doc of ["bench/README.md", "docs/operating.md"]) {
  Deno.test(`${doc}: each big-guild table matches the results file it names`, async () => {
    const text = await Deno.readTextFile(new URL(doc, ROOT));
    const blocks = bigGuildBlocks(text);
    assert.ok(blocks.length > 0, `${doc} embeds no big-guild results`);
    for (const { file, table } of blocks) {
      assert.match(file, /^(\.\.\/)?(bench\/)?results\/[\w.-]+\.json$/);
      const results: BigGuildResults = JSON.parse(
        await Deno.readTextFile(new URL(file.replace(/^(\.\.\/)?(bench\/)?/, "bench/"), ROOT)),
      );
      assert.ok(results.date && results.results, `${file}: date and results`);
      assert.deepEqual(tableCells(table), tableCells(bigGuildTable(results)), `${doc}: ${file}`);
      // The text links the file it names.
      assert.ok(text.includes(`](${file})`), `${doc} links ${file}`);
    }
  });
}

Deno.test("the table shows what the file holds (a changed figure changes the table)", () => {
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
