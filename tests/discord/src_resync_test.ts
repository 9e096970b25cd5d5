// Issue 13 items 4, 5 and 9 against a fake Discord that misbehaves in exactly that way.
import assert from "node:assert/strict";
import {
  ADA,
  BOB,
  FakeDiscord,
  GUILD,
  GUILD2,
  makeSource,
  member,
  RecordingSink,
  serveSource,
  smallGuild,
  user,
} from "../_fixtures/fake_discord.ts";
import { joined } from "../_fixtures/helpers.ts";

const uid = (i: number) => `31${String(i).padStart(16, "0")}`;

/** A large guild of `n` members, all online; GUILD_CREATE carries `shown` of them and no presences. */
function bigGuild(id: string, n: number, shown: number) {
  const members = Array.from({ length: n }, (_, i) => member(user(uid(i), `m${i}`)));
  return {
    all: members,
    create: {
      id,
      name: `Big ${id.slice(-1)}`,
      large: true,
      member_count: n,
      roles: [],
      members: members.slice(0, shown),
      presences: [],
    },
  };
}

/** Answer op 8 with chunks of 100 carrying every member and an `online` presence for each. */
function answerChunks(members: ReturnType<typeof member>[], status = (_i: number) => "online") {
  return (
    conn: { dispatch(t: string, d: unknown): void },
    d: { guild_id: string; nonce: string },
  ) => {
    const size = 100;
    const count = Math.max(1, Math.ceil(members.length / size));
    for (let c = 0; c < count; c++) {
      const part = members.slice(c * size, (c + 1) * size);
      conn.dispatch("GUILD_MEMBERS_CHUNK", {
        guild_id: d.guild_id,
        members: part,
        presences: part.map((m, i) => ({ user: { id: m.user.id }, status: status(c * size + i) }))
          .filter((p) => p.status !== "offline"),
        chunk_index: c,
        chunk_count: count,
        nonce: d.nonce,
      });
    }
  };
}

Deno.test("discord resync (13.5): a re-IDENTIFY with fewer presences sends only real changes", async () => {
  const N = 300;
  const big = bigGuild(GUILD, N, 50);
  const fake = await FakeDiscord.start({ guilds: [big.create] });
  fake.onRequestMembers = answerChunks(big.all);
  const { source } = makeSource(fake);
  await using served = await serveSource(source);
  try {
    await fake.until(() => Object.keys(source.getUserData(GUILD)).length === N, 5000, "full list");
    const c = await joined(served.url, GUILD);
    // While away: member 7 went idle, member 8 left. GUILD_CREATE shows 50 members, no presences.
    const after = big.all.filter((_, i) => i !== 8);
    fake.guilds = [{ ...big.create, member_count: N - 1, members: after.slice(0, 50) }];
    fake.onRequestMembers = answerChunks(after, (i) => (i === 7 ? "idle" : "online"));
    fake.current.send({ op: 9, d: false });
    await fake.until(() => fake.sessions === 2, 5000, "re-identify");
    await fake.until(
      () => source.getUserData(GUILD)[uid(7)]?.status === "idle",
      5000,
      "the list to complete",
    );
    // A marker message proves every earlier frame has arrived.
    fake.current.dispatch("MESSAGE_CREATE", {
      id: "1",
      guild_id: GUILD,
      channel_id: "500000000000000001",
      content: "marker",
      author: user(uid(0), "m0"),
    });
    const frames = [];
    for (;;) {
      const f = await c.next(5000);
      if (f.type === "message") break;
      frames.push(f);
    }
    assert.deepEqual(frames.map((f) => f.data).sort((a, b) => a.uid.localeCompare(b.uid)), [
      { uid: uid(7), status: "idle" },
      { uid: uid(8), status: "offline", delete: true },
    ]);
    await c.close();
  } finally {
    await fake.stop();
  }
});

Deno.test("discord resync (13.4): 150 large guilds, one op 7: every member list completes", async () => {
  const guilds = Array.from(
    { length: 150 },
    (_, i) => bigGuild(`1000000000000${String(i).padStart(5, "0")}`, 120, 10),
  );
  const fake = await FakeDiscord.start({ guilds: guilds.map((g) => g.create) });
  // The first connection answers the first 40 requests, then sends op 7 and ignores the rest.
  let seen = 0;
  fake.onRequestMembers = (conn, d) => {
    if (conn.id === 1) {
      seen++;
      if (seen <= 40) answerChunks(guilds.find((g) => g.create.id === d.guild_id)!.all)(conn, d);
      if (seen === 40) conn.send({ op: 7 });
      return;
    }
    answerChunks(guilds.find((g) => g.create.id === d.guild_id)!.all)(conn, d);
  };
  const { source, logs } = makeSource(fake, {
    memberRequestTimeoutMs: 60_000,
    timing: {
      identifyIntervalMs: 0,
      reconnectBaseMs: 20,
      reconnectMaxMs: 200,
      invalidSessionDelayMs: 20,
      sendLimit: 1000,
    },
  });
  const sink = new RecordingSink();
  try {
    await source.start(sink);
    await fake.until(
      () => guilds.every((g) => Object.keys(source.getUserData(g.create.id)).length === 120),
      10_000,
      "every member list",
    );
    const first = new Set(fake.ops(8).filter((r) => r.conn === 1).map((r) => r.payload.d.nonce));
    const resent = fake.ops(8).filter((r) => r.conn === 2).map((r) => r.payload.d);
    assert.ok(resent.length >= 110, `the unanswered guilds asked again (${resent.length})`);
    for (const r of resent) assert.ok(!first.has(r.nonce), "a new nonce per request");
    assert.equal(fake.sessions, 1, "resumed, not re-identified");
    assert.ok(!logs.some((l) => l.level === "error"));
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord resync (13.4): an unanswered member request is sent again after its deadline", async () => {
  const g = bigGuild(GUILD, 120, 5);
  const fake = await FakeDiscord.start({ guilds: [g.create] });
  let asked = 0;
  fake.onRequestMembers = (conn, d) => {
    if (++asked === 1) return; // lost
    answerChunks(g.all)(conn, d);
  };
  const { source, logs } = makeSource(fake, { memberRequestTimeoutMs: 200 });
  try {
    await source.start(new RecordingSink());
    await fake.until(() => Object.keys(source.getUserData(GUILD)).length === 120, 5000, "list");
    assert.equal(asked, 2);
    assert.ok(logs.some((l) => /incomplete after 200 ms; asking again/.test(l.message)));
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord guilds (13.9): GUILD_DELETE and a READY without the guild remove it and tell the sink", async () => {
  const fake = await FakeDiscord.start({
    guilds: [smallGuild(), smallGuild(GUILD2, "Two"), smallGuild("100000000000000003", "Three")],
  });
  const { source, logs } = makeSource(fake);
  const sink = new RecordingSink();
  try {
    await source.start(sink);
    assert.equal(Object.keys(source.getServerData()).length, 3);
    // an outage is not a removal
    fake.current.dispatch("GUILD_DELETE", { id: GUILD, unavailable: true });
    fake.current.dispatch("GUILD_DELETE", { id: GUILD2 });
    await fake.until(() => sink.gone.length === 1, 3000, "serverGone");
    assert.deepEqual(sink.gone, [GUILD2]);
    assert.deepEqual(Object.keys(source.getServerData()).sort(), [GUILD, "100000000000000003"]);
    assert.throws(() => source.getUserData(GUILD2), /not available/);
    // The bot is removed from Three while the session is lost; READY no longer lists it.
    fake.guilds = [smallGuild()];
    fake.current.send({ op: 9, d: false });
    await fake.until(() => sink.gone.length === 2, 5000, "serverGone after READY");
    assert.deepEqual(sink.gone, [GUILD2, "100000000000000003"]);
    assert.deepEqual(Object.keys(source.getServerData()), [GUILD]);
    assert.ok(logs.some((l) => /not in READY: the bot was removed/.test(l.message)));
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord logins (13.9): a member who leaves loses a cached login; /users/@me failures are logged", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const left: string[] = [];
  const { source, logs } = makeSource(fake, {
    apiBase: fake.apiBase,
    passworded: true,
    clientId: "777000000000000001",
    onMemberLeave: (u, g) => left.push(`${u}@${g}`),
  });
  try {
    await source.start(new RecordingSink());
    const ada = { id: ADA, username: "ada" };
    assert.equal(await source.validateDiscordUser(`user-${ADA}`, ada, GUILD), true);
    const calls = fake.rest.length;
    assert.equal(await source.validateDiscordUser(`user-${ADA}`, ada, GUILD), true);
    assert.equal(fake.rest.length, calls, "the second answer came from the cache");
    fake.current.dispatch("GUILD_MEMBER_REMOVE", { guild_id: GUILD, user: user(ADA, "ada") });
    await fake.until(() => left.length === 1, 3000, "onMemberLeave");
    assert.deepEqual(left, [`${ADA}@${GUILD}`]);
    assert.equal(await source.validateDiscordUser(`user-${ADA}`, ada, GUILD), false);
    // /users/@me answers 500: refused and logged.
    fake.onRest = (_req, url) =>
      url.pathname.endsWith("/users/@me") ? new Response("oops", { status: 500 }) : undefined;
    const bob = { id: BOB, username: "bob" };
    assert.equal(await source.validateDiscordUser(`user-${BOB}`, bob, GUILD), false);
    assert.ok(
      logs.some((l) => l.level === "warn" && /users\/@me/.test(l.message) && /500/.test(l.message)),
      logs.map((l) => l.message).join("\n"),
    );
  } finally {
    await source.stop();
    await fake.stop();
  }
});
