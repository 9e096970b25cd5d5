// Issue 13 item 7 (IDENTIFY budget) and item 13's transport part (sharding):
// the GatewayClient against a fake Discord with a session_start_limit, a
// gateway that refuses every IDENTIFY, and one that demands 2 shards.
import assert from "node:assert/strict";
import { GatewayClient } from "../../src/discord/_gateway.ts";
import { IdentifyBudget } from "../../src/discord/_identify_budget.ts";
import { Logger } from "../../src/log.ts";
import { FakeDiscord, gatewayClient, smallGuild } from "../_fixtures/fake_discord.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("gateway 13.7: session_start_limit.remaining = 0 waits for reset_after before IDENTIFY", async () => {
  await using fake = await FakeDiscord.start({
    sessionStartLimit: { total: 1000, remaining: 0, reset_after: 400, max_concurrency: 1 },
  });
  await using c = gatewayClient(fake, { gatewayUrl: undefined });
  c.client.connect();
  const identify = await fake.waitOp(2, 1, 5000);
  const rest = fake.rest.find((h) => h.path.endsWith("/gateway/bot"))!;
  // A lower bound, not a speed: IDENTIFY must not come before Discord's reset.
  assert.ok(identify.at - rest.at >= 380, `IDENTIFY ${identify.at - rest.at} ms after the answer`);
  const line = c.lines(/session_start_limit used up/);
  assert.equal(line.length, 1);
  assert.equal(line[0].level, "warn");
  await fake.waitSession(1);
  assert.equal(c.client.gatewayInfo?.sessionStartLimit?.remaining, 0);
});

Deno.test("gateway 13.7: IDENTIFYs that keep failing are spaced out more and more, with a clear log line", async () => {
  await using fake = await FakeDiscord.start();
  await using c = gatewayClient(fake, {
    timing: { reconnectBaseMs: 20, reconnectMaxMs: 50, identifyBackoffMaxMs: 400 },
  });
  c.client.connect();
  await fake.waitSession(1);
  fake.identifyReply = "invalid";
  fake.current.send({ op: 9, d: false });
  await sleep(2500);
  const ids = fake.ops(2);
  // Without the IDENTIFY backoff this loop identifies every ~40 ms (~60 times).
  assert.ok(ids.length >= 5 && ids.length <= 16, `${ids.length} IDENTIFYs in 2.5 s`);
  const gaps = ids.slice(1).map((r, i) => r.at - ids[i].at);
  assert.ok(gaps.at(-1)! >= 200, `last gap ${gaps.at(-1)} ms: the backoff reached its cap range`);
  const warn = c.lines(/IDENTIFY failed \d+ time\(s\) in a row; next IDENTIFY in \d+ ms/);
  assert.ok(warn.some((l) => l.level === "warn" && /1000 a day/.test(l.message)));
  assert.equal(c.fatal.length, 0, "after a first READY it keeps trying, slowly");
  fake.identifyReply = "ready";
  await fake.until(() => c.sessions.length === 2, 3000, "READY again");
});

Deno.test("gateway 13.7: before the first READY, failed IDENTIFYs give up after maxStartFailures", async () => {
  await using fake = await FakeDiscord.start();
  fake.identifyReply = "invalid";
  await using c = gatewayClient(fake, { timing: { maxStartFailures: 3 } });
  c.client.connect();
  await fake.until(() => c.fatal.length === 1, 5000, "the fatal error");
  assert.equal(fake.ops(2).length, 3);
  assert.match(c.fatal[0].message, /after 3 attempts/);
});

Deno.test("gateway 13.7: max_concurrency buckets space IDENTIFYs of shards sharing a budget", () => {
  const budget = new IdentifyBudget({ intervalMs: 5000, maxConcurrency: 2, remaining: 3 });
  assert.deepEqual([0, 1, 2, 3].map((s) => budget.reserve(s, 1000)), [0, 0, 5000, 5000]);
  // remaining reached 0 (3 used, the 4th borrowed): updates from Discord take over.
  budget.update({ total: 10, remaining: 0, resetAfterMs: 60_000, maxConcurrency: 1 }, 2000);
  assert.equal(budget.reserve(0, 2000), 60_000);
  assert.equal(budget.remaining, 9);
});

Deno.test("gateway 13.13: a bot that needs 2 shards: 4011 names the fix, /gateway/bot's numbers are exposed", async () => {
  const a = "100000000000000001"; // (id >> 22) % 2 === 0
  const b = String((1n << 22n) + 1n); // (id >> 22) % 2 === 1
  await using fake = await FakeDiscord.start({
    shards: 2,
    guilds: [smallGuild(a, "A"), smallGuild(b, "B")],
    sessionStartLimit: { total: 1000, remaining: 990, reset_after: 1000, max_concurrency: 2 },
  });
  {
    await using c = gatewayClient(fake, { gatewayUrl: undefined });
    c.client.connect();
    await fake.until(() => c.fatal.length === 1, 5000, "4011");
    assert.match(c.fatal[0].message, /4011.*run several shards/);
    assert.equal(c.client.gatewayInfo?.shards, 2);
    assert.equal(c.client.gatewayInfo?.sessionStartLimit?.maxConcurrency, 2);
  }
  const budget = new IdentifyBudget({ intervalMs: 300, maxConcurrency: 2 });
  await using s0 = gatewayClient(fake, { shard: [0, 2], identifyBudget: budget });
  await using s1 = gatewayClient(fake, { shard: [1, 2], identifyBudget: budget });
  s0.client.connect();
  s1.client.connect();
  await fake.waitSession(2);
  const shardsSent = fake.ops(2).map((r) => r.payload.d.shard).filter(Boolean);
  assert.deepEqual(shardsSent.toSorted(), [[0, 2], [1, 2]]);
  const guildsOf = (x: typeof s0) =>
    x.dispatches.filter((d) => d.t === "GUILD_CREATE").map((d) => (d.d as { id: string }).id);
  await fake.until(() => guildsOf(s0).length === 1 && guildsOf(s1).length === 1, 3000, "guilds");
  assert.deepEqual(guildsOf(s0), [a]);
  assert.deepEqual(guildsOf(s1), [b]);
  assert.match(s1.logs.find((l) => /identifying/.test(l.message))!.message, /^\[shard 1\/2\]/);
});

Deno.test("gateway 13.13: four shards with max_concurrency 2 identify two at a time", async () => {
  await using fake = await FakeDiscord.start({ shards: 4 });
  const budget = new IdentifyBudget({ intervalMs: 300, maxConcurrency: 2 });
  const clients = [0, 1, 2, 3].map((id) =>
    gatewayClient(fake, { shard: [id, 4], identifyBudget: budget })
  );
  try {
    for (const c of clients) c.client.connect();
    await fake.waitSession(4);
    const at = new Map(fake.ops(2).map((r) => [r.payload.d.shard[0] as number, r.at]));
    const first = Math.min(at.get(0)!, at.get(1)!);
    // Lower bounds: the second pair must wait one interval after the first.
    assert.ok(at.get(2)! - first >= 280, `shard 2 after ${at.get(2)! - first} ms`);
    assert.ok(at.get(3)! - first >= 280, `shard 3 after ${at.get(3)! - first} ms`);
  } finally {
    for (const c of clients) await c.client.close();
  }
});

Deno.test("gateway: an invalid shard is a TypeError", () => {
  const base = {
    token: "t",
    intents: 1,
    apiBase: "http://127.0.0.1:1/api/v10",
    fetch,
    log: new Logger("silent"),
    onDispatch: () => {},
    onFatal: () => {},
  };
  assert.throws(() => new GatewayClient({ ...base, shard: [2, 2] }), TypeError);
  assert.throws(() => new GatewayClient({ ...base, shard: [-1, 2] }), TypeError);
  assert.throws(() => new GatewayClient({ ...base, shard: [0, 0] }), TypeError);
});
