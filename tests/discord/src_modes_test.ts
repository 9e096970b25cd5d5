// Issue 13 items 11 (all guilds), 12 (info command) and 13 (sharding) against the fake Discord.
import assert from "node:assert/strict";
import { fetchShardPlan, shardOf } from "../../src/discord/_shards.ts";
import {
  ADA,
  BOB,
  CHANNEL,
  FakeDiscord,
  GUILD,
  GUILD2,
  makeSource,
  OTHER_CHANNEL,
  RecordingSink,
  serveSource,
  smallGuild,
  user,
} from "../_fixtures/fake_discord.ts";
import { joined } from "../_fixtures/helpers.ts";

const GUILD3 = "100000000000000003";

Deno.test("discord all guilds (13.11): joins and leaves show up; viewers elsewhere are not disturbed", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild(), smallGuild(GUILD2, "Two")] });
  const { source } = makeSource(fake, {
    allGuilds: true,
    servers: [{ id: GUILD2, alias: "Lobby", default: true }],
  });
  await using s = await serveSource(source, { recordGone: true });
  try {
    // configured servers first, with their settings; the rest as Discord names them
    assert.deepEqual(source.getServerData(), {
      [GUILD2]: { id: GUILD2, name: "Lobby", default: true, passworded: false },
      [GUILD]: { id: GUILD, name: "Test Guild", default: false, passworded: false },
    });
    const c = await joined(s.url, GUILD);
    // The bot is invited to a third guild.
    fake.current.dispatch("GUILD_CREATE", smallGuild(GUILD3, "Three"));
    await fake.until(() => GUILD3 in source.getServerData(), 3000, "the new guild");
    const late = await joined(s.url, GUILD3);
    assert.equal(late.frames.find((f) => f.type === "server-join")!.data.serverName, "Three");
    // ...and removed from it.
    fake.current.dispatch("GUILD_DELETE", { id: GUILD3 });
    await fake.until(() => s.gone.length === 1, 3000, "serverGone");
    assert.deepEqual(s.gone, [GUILD3]);
    assert.ok(!(GUILD3 in source.getServerData()));
    // The viewer in GUILD saw nothing of it (no mid-session server-list): the next frame is the marker.
    fake.current.dispatch("MESSAGE_CREATE", {
      id: "1",
      guild_id: GUILD,
      channel_id: CHANNEL,
      content: "marker",
      author: user(ADA, "ada"),
    });
    const f = await c.next();
    assert.equal(f.type, "message");
    await c.close();
    await late.close();
  } finally {
    await fake.stop();
  }
});

Deno.test("discord info command (13.12): replies with the viewer URL, once per channel per cooldown", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const posts: Array<
    { path: string; auth: string | null; body: { content: string; allowed_mentions: unknown } }
  > = [];
  fake.onRest = (req, url, body) => {
    if (req.method !== "POST") return undefined;
    posts.push({
      path: url.pathname,
      auth: req.headers.get("authorization"),
      body: JSON.parse(body),
    });
    // the bot may not write in OTHER_CHANNEL
    return url.pathname.includes(OTHER_CHANNEL)
      ? Response.json({ message: "Missing Permissions" }, { status: 403 })
      : Response.json({ id: "1" });
  };
  const { source, logs } = makeSource(fake, {
    apiBase: fake.apiBase,
    servers: [{ id: GUILD, slug: "test" }],
    infoCommand: "!d-zone",
    url: "https://dzone.example/view/",
    infoCooldownMs: 60_000,
  });
  try {
    await source.start(new RecordingSink());
    const say = (channel: string, content: string, author = user(ADA, "ada")) =>
      fake.current.dispatch("MESSAGE_CREATE", {
        id: "1",
        guild_id: GUILD,
        channel_id: channel,
        content,
        author,
      });
    say(CHANNEL, "!d-zone");
    say(CHANNEL, "!D-ZONE"); // same channel, within the cooldown: no second reply
    say(CHANNEL, "!d-zone", user("300000000000000004", "botty", { bot: true })); // bots are ignored
    say(CHANNEL, "!d-zone please"); // not the command
    say(OTHER_CHANNEL, "!d-zone");
    await fake.until(() => posts.length === 2, 3000, "two replies");
    await fake.until(() => logs.some((l) => /HTTP 403/.test(l.message)), 3000, "the 403 logged");
    const reply = posts.find((p) => p.path.includes(CHANNEL))!;
    assert.equal(reply.path, `/api/v10/channels/${CHANNEL}/messages`);
    assert.equal(reply.auth, `Bot ${fake.token}`);
    assert.equal(
      reply.body.content,
      "Watch Test Guild in d-zone: https://dzone.example/view/?s=test",
    );
    assert.deepEqual(reply.body.allowed_mentions, { parse: [] });
    // a few more tries in the same channel still make no request
    for (let i = 0; i < 5; i++) say(CHANNEL, "!d-zone", user(BOB, "bob"));
    fake.current.dispatch("MESSAGE_CREATE", {
      id: "2",
      guild_id: GUILD,
      channel_id: CHANNEL,
      content: "x",
      author: user(ADA, "ada"),
    });
    await fake.until(
      () => logs.filter((l) => /ignored \(cooldown\)/.test(l.message)).length >= 6,
      3000,
      "cooldown logs",
    );
    assert.equal(posts.length, 2);
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord sharding: the shard of a guild", () => {
  assert.equal(shardOf(String((5n << 22n) + 123n), 2), 1);
  assert.equal(shardOf(String((6n << 22n) + 123n), 4), 2);
});

Deno.test({
  name: "discord sharding (13.13): a fake that demands 2 shards gets 2 sessions, one state each",
  async fn() {
    // guild ids that fall on shard 0 and shard 1 of 2
    const g0 = String((1n << 40n) << 22n);
    const g1 = String(((1n << 40n) + 1n) << 22n);
    assert.equal(shardOf(g0, 2), 0);
    assert.equal(shardOf(g1, 2), 1);
    const fake = await FakeDiscord.start({
      guilds: [smallGuild(g0, "Zero"), smallGuild(g1, "One")],
    });
    fake.shards = 2;
    fake.requireShards = true;
    const { source } = makeSource(fake, {
      apiBase: fake.apiBase,
      gatewayUrl: undefined,
      shards: "auto",
      timing: { identifyIntervalMs: 200, reconnectBaseMs: 20, reconnectMaxMs: 200 },
    });
    const sink = new RecordingSink();
    try {
      await source.start(sink);
      assert.equal(source.shardCount, 2);
      const ids = fake.ops(2).map((r) => r.payload.d.shard);
      assert.deepEqual(ids, [[0, 2], [1, 2]]);
      const [a, b] = fake.ops(2).map((r) => fake.conns[r.conn - 1]);
      assert.notEqual(a, b);
      assert.deepEqual(Object.keys(source.getServerData()).sort(), [g0, g1].sort());
      // each shard's events reach the sink, and its state
      fake.conns.find((c) => c.shard?.[0] === 1)!.dispatch("PRESENCE_UPDATE", {
        guild_id: g1,
        user: { id: ADA },
        status: "dnd",
      });
      await fake.until(() => sink.presences.length === 1, 3000, "presence from shard 1");
      assert.equal(source.getUserData(g1)[ADA].status, "dnd");
      assert.equal(source.getUserData(g0)[ADA].status, "online");
    } finally {
      await source.stop();
      await fake.stop();
    }
  },
});

Deno.test(
  "discord sharding (13.13): with max_concurrency 1 the second shard identifies a window later",
  async () => {
    const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
    fake.shards = 2;
    fake.requireShards = true;
    const { source } = makeSource(fake, {
      apiBase: fake.apiBase,
      shards: "auto",
      timing: { identifyIntervalMs: 300, reconnectBaseMs: 20, reconnectMaxMs: 200 },
    });
    try {
      await source.start(new RecordingSink());
      const at = fake.ops(2).map((r) => r.at);
      assert.equal(at.length, 2);
      // a rate-limit rule, not a speed claim: never two identifies in one window
      assert.ok(at[1] - at[0] >= 250, `identifies ${at[1] - at[0]} ms apart`);
      assert.equal(
        fake.paths().filter((p) => p === "/gateway/bot").length,
        1,
        "the plan's answer serves every shard",
      );
    } finally {
      await source.stop();
      await fake.stop();
    }
  },
);

Deno.test("discord sharding (13.7): the shards share session_start_limit; none identifies beyond it", async () => {
  const fake = await FakeDiscord.start({
    guilds: [smallGuild()],
    shards: 2,
    // one IDENTIFY left, then the period resets in 600 ms; both shards share a slot
    sessionStartLimit: { total: 1000, remaining: 1, reset_after: 600, max_concurrency: 2 },
  });
  fake.requireShards = true;
  const { source, logs } = makeSource(fake, {
    apiBase: fake.apiBase,
    gatewayUrl: undefined,
    shards: "auto",
  });
  try {
    await source.start(new RecordingSink());
    const at = fake.ops(2).map((r) => r.at);
    assert.equal(at.length, 2);
    assert.ok(at[1] - at[0] >= 500, `second IDENTIFY ${at[1] - at[0]} ms after the first`);
    assert.ok(logs.some((l) => /session_start_limit used up/.test(l.message)), "a clear log line");
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord sharding (13.8): the shard plan honours retry_after and names a final HTTP failure", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()], shards: 2 });
  let calls = 0;
  fake.restOverride = (_req, url) => {
    if (!url.pathname.endsWith("/gateway/bot") || ++calls > 1) return undefined;
    return Response.json({
      message: "You are being rate limited.",
      retry_after: 0.3,
      global: false,
    }, {
      status: 429,
    });
  };
  const { source } = makeSource(fake, {
    apiBase: fake.apiBase,
    gatewayUrl: undefined,
    shards: "auto",
  });
  try {
    await source.start(new RecordingSink());
    assert.equal(source.shardCount, 2);
    const hits = fake.rest.filter((h) => h.path.endsWith("/gateway/bot")).map((h) => h.at);
    assert.equal(hits.length, 2);
    assert.ok(hits[1] - hits[0] >= 280, `retried ${hits[1] - hits[0]} ms after the 429`);
  } finally {
    await source.stop();
  }
  // A persistent 500 from an API base that is not Discord's: a final error naming it,
  // and no gateway connection (the token goes nowhere else).
  fake.restOverride = () => new Response("boom", { status: 500 });
  const broken = makeSource(fake, {
    apiBase: fake.apiBase,
    gatewayUrl: undefined,
    shards: "auto",
    timing: { restAttempts: 2, restRetryBaseMs: 10 },
  }).source;
  const conns = fake.conns.length;
  try {
    await assert.rejects(broken.start(new RecordingSink()), /gateway\/bot.*HTTP 500/);
    assert.equal(fake.conns.length, conns);
  } finally {
    await broken.stop();
    await fake.stop();
  }
});

Deno.test("discord sharding (13.13): a fixed count wins over the recommendation; /gateway/bot is asked once for all shards", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] }); // recommends 1 shard
  const { source } = makeSource(fake, {
    apiBase: fake.apiBase,
    gatewayUrl: undefined,
    shards: 3,
  });
  try {
    await source.start(new RecordingSink());
    assert.equal(source.shardCount, 3);
    assert.deepEqual(fake.ops(2).map((r) => r.payload.d.shard), [[0, 3], [1, 3], [2, 3]]);
    assert.deepEqual(fake.paths().filter((p) => p === "/gateway/bot"), ["/gateway/bot"]);
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord sharding (13.13): a fatal close on one shard stops every shard and fails start()", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  fake.identifyCloseFor = (conn) => (conn.id === 2 ? 4014 : undefined);
  const { source } = makeSource(fake, {
    shards: 2,
    timing: { identifyIntervalMs: 50, reconnectBaseMs: 20, reconnectMaxMs: 200 },
  });
  try {
    await assert.rejects(source.start(new RecordingSink()), /4014/);
    assert.equal(source.error?.code, 4014);
    await fake.until(() => fake.conns.every((c) => !c.open), 3000, "every shard closed");
    assert.equal(fake.conns.length, 2);
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("shards auto: at most 1024; a larger recommendation is refused, not obeyed", async () => {
  const recommending = (shards: number) => () =>
    Promise.resolve(Response.json({
      url: "wss://gateway.example",
      shards,
      session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 16 },
    }));
  const api = "http://127.0.0.1:1/api/v10";
  assert.equal((await fetchShardPlan(recommending(1024), api, "token")).count, 1024);
  await assert.rejects(
    fetchShardPlan(recommending(1025), api, "token"),
    /recommends 1025 shards; at most 1024 are supported/,
  );
});
