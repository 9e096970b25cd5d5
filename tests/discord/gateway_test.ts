// The gateway protocol of DiscordGatewaySource against the shared fake Discord.
import assert from "node:assert/strict";
import {
  DEFAULT_INTENTS,
  DiscordGatewayError,
  DiscordGatewaySource,
  Intents,
} from "../../src/discord/mod.ts";
import { FakeDiscord, GUILD, makeSource, smallGuild } from "../_fixtures/fake_discord.ts";

Deno.test("fake discord: answers /gateway/bot and checks the token", async () => {
  await using fake = await FakeDiscord.start();
  const ok = await fetch(`${fake.apiBase}/gateway/bot`, {
    headers: { authorization: "Bot test-token" },
  });
  assert.equal((await ok.json()).url, fake.gatewayUrl);
  const bad = await fetch(`${fake.apiBase}/gateway/bot`, { headers: { authorization: "Bot x" } });
  assert.equal(bad.status, 401);
  await bad.body?.cancel();
});

Deno.test("discord gateway: identifies with the token and intents, then heartbeats", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()], heartbeatIntervalMs: 300 });
  const { source } = makeSource(fake);
  try {
    await source.start();
    const identify = (await fake.waitOp(2)).payload;
    assert.equal(identify.d.token, "test-token");
    assert.equal(identify.d.intents, DEFAULT_INTENTS);
    assert.equal(
      identify.d.intents,
      (1 << 0) | (1 << 1) | (1 << 8) | (1 << 9) | (1 << 15),
    );
    assert.equal(DEFAULT_INTENTS & Intents.GUILD_PRESENCES, 256);
    assert.equal(typeof identify.d.properties.os, "string");
    assert.equal(fake.current.path, "/gateway");
    assert.equal(fake.current.query.get("v"), "10");
    assert.equal(fake.current.query.get("encoding"), "json");
    // Heartbeats come at the HELLO interval (300 ms) and carry the last sequence.
    const first = (await fake.waitOp(1, 1, 3000)).payload;
    assert.ok(first.d === null || typeof first.d === "number");
    const second = (await fake.waitOp(1, 2, 3000)).payload;
    assert.ok(typeof second.d === "number" && second.d >= 1, "heartbeat carries the sequence");
    assert.deepEqual(source.guildIds, [GUILD]);
    assert.equal(fake.conns.length, 1, "no reconnects while ACKs arrive");
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: the URL comes from GET /gateway/bot when not given", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake, { gatewayUrl: undefined, apiBase: fake.apiBase });
  try {
    await source.start();
    assert.equal(fake.rest[0].path, "/api/v10/gateway/bot");
    assert.equal(fake.rest[0].authorization, "Bot test-token");
    assert.equal(fake.current.path, "/gateway");
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: HTTP 401 from /gateway/bot is a clear, final error", async () => {
  const fake = await FakeDiscord.start();
  const { source } = makeSource(fake, {
    token: "wrong",
    gatewayUrl: undefined,
    apiBase: fake.apiBase,
  });
  try {
    await assert.rejects(source.start(), (err: unknown) => {
      assert.ok(err instanceof DiscordGatewayError);
      assert.match(err.message, /token/i);
      return true;
    });
    assert.equal(fake.conns.length, 0);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: a missed heartbeat ACK reconnects and RESUMEs", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()], heartbeatIntervalMs: 150 });
  fake.ackFor = (conn) => conn.id > 1; // the first connection is a zombie
  const { source, logs } = makeSource(fake);
  try {
    await source.start();
    const seqBefore = fake.seq;
    const resume = await fake.waitOp(6, 1, 5000);
    assert.equal(resume.conn, 2);
    assert.equal(resume.payload.d.token, "test-token");
    assert.equal(resume.payload.d.session_id, "session-1");
    assert.equal(resume.payload.d.seq, seqBefore);
    assert.equal(fake.conns[1].path, "/resume", "resumes at resume_gateway_url");
    assert.equal(fake.conns[1].query.get("v"), "10");
    await fake.waitSession(2);
    assert.equal(fake.ops(2).length, 1, "no second IDENTIFY");
    assert.ok(logs.some((l) => /zombie/i.test(l.message)));
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: op 7 RECONNECT resumes on a new connection", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake);
  try {
    await source.start();
    fake.current.send({ op: 7, d: null });
    const resume = await fake.waitOp(6);
    assert.ok(resume.conn > 1, "on a new connection");
    assert.equal(resume.payload.d.session_id, "session-1");
    assert.equal(resume.payload.d.seq, 2); // READY and one GUILD_CREATE
    await fake.waitSession(2);
    assert.equal(fake.ops(2).length, 1);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: op 9 with d=false identifies again", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake);
  try {
    await source.start();
    fake.current.send({ op: 9, d: false });
    const identify = await fake.waitOp(2, 2);
    assert.equal(identify.payload.d.token, "test-token");
    assert.equal(fake.ops(6).length, 0, "no RESUME after a non-resumable invalid session");
    await fake.waitSession(2);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: op 9 with d=true resumes", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake);
  try {
    await source.start();
    fake.current.send({ op: 9, d: true });
    const resume = await fake.waitOp(6);
    assert.equal(resume.payload.d.session_id, "session-1");
    assert.equal(fake.ops(2).length, 1);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: an unexpected close (4000) reconnects and resumes", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake);
  try {
    await source.start();
    fake.current.close(4000, "Unknown error.");
    const resume = await fake.waitOp(6);
    assert.equal(resume.payload.d.session_id, "session-1");
    await fake.waitSession(2);
    assert.equal(source.error, undefined);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: close 4004 is final, with a clear error", async () => {
  const fake = await FakeDiscord.start();
  const errors: DiscordGatewayError[] = [];
  const { source } = makeSource(fake, { token: "not-the-token", onError: (e) => errors.push(e) });
  try {
    await assert.rejects(source.start(), (err: unknown) => {
      assert.ok(err instanceof DiscordGatewayError);
      assert.equal(err.code, 4004);
      assert.match(err.message, /token/i);
      assert.match(err.message, /DISCORD_TOKEN/);
      return true;
    });
    assert.equal(errors.length, 1);
    assert.equal(source.error, errors[0]);
    // No retry: give a reconnect (20 ms backoff) ample time to happen.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.conns.length, 1);
    assert.equal(fake.ops(2).length, 1);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: close 4014 tells to enable the privileged intents", async () => {
  const fake = await FakeDiscord.start({ identifyCloseCode: 4014 });
  const { source } = makeSource(fake);
  try {
    await assert.rejects(source.start(), (err: unknown) => {
      assert.ok(err instanceof DiscordGatewayError);
      assert.equal(err.code, 4014);
      assert.match(err.message, /privileged intents/i);
      assert.match(err.message, /PRESENCE INTENT/);
      return true;
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fake.conns.length, 1);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: malformed frames and dispatches are logged, not fatal", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source, logs } = makeSource(fake);
  try {
    await source.start();
    const c = fake.current;
    c.sendRaw("this is not json");
    c.sendRaw(JSON.stringify({ hello: "no opcode" }));
    c.dispatch("GUILD_CREATE", { id: 12 });
    c.dispatch("PRESENCE_UPDATE", { guild_id: GUILD, user: { name: "no id" }, status: "online" });
    c.dispatch("GUILD_MEMBER_ADD", null);
    c.dispatch("MESSAGE_CREATE", "text");
    c.dispatch("GUILD_ROLE_UPDATE", { guild_id: GUILD, role: { id: "x" } });
    c.dispatch("GUILD_MEMBERS_CHUNK", { guild_id: GUILD, members: "nope" });
    c.dispatch("PRESENCE_UPDATE", {
      guild_id: GUILD,
      user: { id: "300000000000000003" },
      status: "dnd",
    });
    await fake.until(() => source.getUserData(GUILD)["300000000000000003"]?.status === "dnd");
    assert.ok(logs.some((l) => l.level === "warn" && /not JSON/.test(l.message)));
    assert.ok(logs.some((l) => l.level === "warn" && /malformed GUILD_CREATE/.test(l.message)));
    assert.ok(logs.some((l) => l.level === "warn" && /malformed PRESENCE_UPDATE/.test(l.message)));
    assert.equal(fake.conns.length, 1);
    assert.equal(source.error, undefined);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord gateway: close() before READY rejects start() and leaks nothing", async () => {
  const fake = await FakeDiscord.start();
  fake.hello = false; // READY never comes
  const { source } = makeSource(fake);
  try {
    const p = source.start();
    await fake.until(() => fake.conns.length === 1, 3000, "a connection");
    await source.close();
    await assert.rejects(p, /closed before it was ready/);
  } finally {
    await source.close();
    await fake.stop();
  }
});

Deno.test("discord source: rejects invalid options", () => {
  assert.throws(() => new DiscordGatewaySource({ token: " " }), /token is required/);
  assert.throws(
    () => new DiscordGatewaySource({ token: "t", guildIds: ["abc"] }),
    /guildIds\.0: must be a snowflake/,
  );
  assert.throws(
    () => new DiscordGatewaySource({ token: "t", gatewayUrl: "http://x" }),
    /gatewayUrl/,
  );
});
