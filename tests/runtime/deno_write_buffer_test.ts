// Deno's own server copies each frame into a per-socket write buffer that keeps the size of the
// largest frame until the socket closes, unless its vectored writes are on (DENO_USE_WRITEV, which
// the Deno transport turns on when it has env access). Against a server in a child process:
// viewers of a 13.3 MB join do not each keep a join's worth of memory; without env access the
// server warns once, naming the cost and the ways out.
import assert from "node:assert/strict";
import { BIG_GUILD_SHORT } from "../_fixtures/big_guild.ts";
import { GuildProcess, RUNTIMES } from "../_fixtures/guild_process.ts";
import { type RawFrame, RawViewer } from "../_fixtures/raw_viewer.ts";

const MiB = 1024 * 1024;
const isJoin = (f: RawFrame) => f.type === "server-join" || f.type === "close";

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `n` viewers from `127.0.<net>.*` join the big guild at once; resolves once all joins are out. */
async function herd(server: GuildProcess, n: number, net: number) {
  const viewers: RawViewer[] = [];
  for (let i = 0; i < n; i++) {
    viewers.push(await RawViewer.connect(server.port, { localAddress: `127.0.${net}.${i + 1}` }));
  }
  for (const v of viewers) v.connect(BIG_GUILD_SHORT);
  const joins = await Promise.all(viewers.map((v) => v.waitFor(isJoin, 0, 300_000)));
  assert.deepEqual(joins.map((f) => f?.type), viewers.map(() => "server-join"));
  await until(async () => (await server.metrics()).unsentBytes === 0, "every join out");
  await new Promise((r) => setTimeout(r, 1000));
  return { viewers, joinBytes: joins[0]!.bytes };
}

const keptWarnings = (server: GuildProcess) =>
  server.logs.filter((l) => l.message.includes("DENO_USE_WRITEV"));

if (RUNTIMES.includes("deno")) {
  Deno.test("deno: viewers of a 13.3 MB join do not each keep a copy of it", async () => {
    await using server = await GuildProcess.start("deno", { members: 100_000 });
    const warm = await RawViewer.connect(server.port, { localAddress: "127.0.1.250" });
    warm.connect(BIG_GUILD_SHORT);
    assert.equal((await warm.waitFor(isJoin))?.type, "server-join");
    const open: RawViewer[] = [warm];
    try {
      // Two herds, the first kept open: what the allocator keeps after the first herd's peak
      // serves the second, so the growth between them is what each joined socket keeps.
      const first = await herd(server, 20, 2);
      open.push(...first.viewers);
      const afterFirst = server.rss();
      const second = await herd(server, 20, 3);
      open.push(...second.viewers);
      const perViewer = (server.rss() - afterFirst) / 20;
      console.log(
        `deno: ${(perViewer / MiB).toFixed(1)} MiB kept per viewer of a ${
          (first.joinBytes / MiB).toFixed(1)
        } MiB join`,
      );
      // Deno's default kept the whole join per socket (13.3 MB each).
      assert.ok(perViewer < first.joinBytes / 2, `${Math.round(perViewer / MiB)} MiB per viewer`);
      assert.equal(keptWarnings(server).length, 0);
      assert.equal((await server.metrics()).droppedSlowClients, 0);
    } finally {
      for (const v of open) v.destroy();
    }
  });

  Deno.test("deno: without env access, the first big join is warned about once", async () => {
    await using server = await GuildProcess.start("deno", {
      members: 100_000,
      denoFlags: ["--deny-env=DENO_USE_WRITEV"],
    });
    const { viewers } = await herd(server, 2, 4);
    try {
      await until(() => keptWarnings(server).length > 0, "the warning");
      const [warning, ...more] = keptWarnings(server);
      assert.equal(more.length, 0);
      assert.equal(warning.level, "warn");
      assert.match(warning.message, /13\.3 MB server-join/);
      assert.match(warning.message, /--transport node/);
    } finally {
      for (const v of viewers) v.destroy();
    }
  });
}
