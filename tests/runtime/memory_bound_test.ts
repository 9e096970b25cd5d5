// The per-address memory bound, attacked for real on every runtime dback runs on: 32 non-reading
// sockets from one address on a 100,000-member guild, re-sending `connect` every 0.5 s and
// replaced whenever the server admits more (old sockets kept open, unread). The bound is
// maxConnectionsPerIp × maxBufferedBytes = 32 × 16 MiB = 512 MiB, with 256 MiB of slack for the
// runtime and the guild itself. Growth is measured from the idle server, before its first join.
import assert from "node:assert/strict";
import { ensureBun } from "../_bun.ts";
import { GuildServer, type Runtime, slowReaders, warmUp } from "../_fixtures/memory_attack.ts";

const MiB = 1024 * 1024;
const BOUND = 512 * MiB;
const SLACK = 256 * MiB;

const RUNTIMES: Runtime[] = [
  { name: "deno", command: [Deno.execPath(), "run", "-A", "--v8-flags=--expose-gc"] },
  { name: "bun", command: ["bun"], prepare: ensureBun },
];

const mib = (n: number) => `${Math.round(n / MiB)} MiB`;

for (const runtime of RUNTIMES) {
  Deno.test(`memory bound (${runtime.name}): 32 slow readers with churn on a 100,000-member guild with presence every 100 ms stay within 512 MiB + slack, during 30 s and 20 s after`, async () => {
    await using server = await GuildServer.start(runtime, { members: 100_000, presenceMs: 100 });
    const before = server.rss();
    const warm = await warmUp(server);
    const r = await slowReaders(server, { before, attackMs: 30_000, holdMs: 20_000 });
    console.log(
      `${runtime.name} presence: peak RSS growth ${mib(r.peakGrowth)} (warm ${
        mib(warm - before)
      }), ${r.admitted} admitted, ${r.refused} refused`,
    );
    assert.ok(r.admitted >= 32, `the attack got its sockets in (${r.admitted})`);
    // The attack made slow readers, or it measured nothing.
    const dropped = await server.metric("dropped_slow_clients_total");
    assert.ok(dropped >= 32, `slow readers were dropped (${dropped})`);
    assert.ok(
      r.peakGrowth <= BOUND + SLACK,
      `RSS grew ${mib(r.peakGrowth)}; bound ${mib(BOUND)} + ${mib(SLACK)}`,
    );
  });

  Deno.test(`memory bound (${runtime.name}): 32 non-readers in a quiet 100,000-member guild are dropped within 30 s, RSS growth within 768 MiB`, async () => {
    await using server = await GuildServer.start(runtime, { members: 100_000, presenceMs: 0 });
    const before = server.rss();
    const warm = await warmUp(server);
    const r = await slowReaders(server, { before, attackMs: 30_000 });
    const dropped = await server.metric("dropped_slow_clients_total");
    console.log(
      `${runtime.name} quiet: peak RSS growth ${mib(r.peakGrowth)} (warm ${
        mib(warm - before)
      }), ${dropped} dropped, ${r.admitted} admitted`,
    );
    assert.ok(dropped >= 32, `the non-readers were dropped (${dropped})`);
    assert.ok(r.peakGrowth <= 768 * MiB, `RSS grew ${mib(r.peakGrowth)}; bound 768 MiB`);
  });
}
