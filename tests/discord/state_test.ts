// Guild state → user maps and broadcasts, end to end: fake Discord → source →
// real WebSocketServer → real d-zone WebSocket client.
import assert from "node:assert/strict";
import {
  ADA,
  BOB,
  BOTTY,
  CHANNEL,
  CY,
  DEE,
  FakeDiscord,
  GUILD,
  GUILD2,
  makeSource,
  member,
  OTHER_CHANNEL,
  role,
  ROLE_BLUE,
  ROLE_RED,
  serveSource,
  smallGuild,
  user,
} from "../_fixtures/fake_discord.ts";
import { type Client, joined } from "../_fixtures/helpers.ts";
import type { DiscordSourceOptions } from "../../src/discord/mod.ts";

/** Fake Discord + started source + real server + a client joined to the guild. */
async function world(extra: Partial<DiscordSourceOptions> = {}, guilds = [smallGuild()]) {
  const fake = await FakeDiscord.start({ guilds });
  const { source, logs } = makeSource(fake, extra);
  const { server, url } = await serveSource(source);
  const client = await joined(url, extra.slugs?.[GUILD] ?? GUILD);
  return {
    fake,
    source,
    logs,
    server,
    url,
    client,
    async close() {
      await client.close();
      await source.stop();
      await server.stop();
      await fake.stop();
    },
  };
}

function joinFrameUsers(c: Client) {
  return c.frames.find((f) => f.type === "server-join")!.data.users;
}

Deno.test("discord state: GUILD_CREATE gives names, statuses and highest role colours", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake);
  try {
    await source.start();
    assert.deepEqual(source.getUserData(GUILD), {
      // nick wins; red (position 3) beats blue (1); the colourless top role is skipped
      [ADA]: { uid: ADA, username: "Countess", status: "online", roleColor: "#ff0000" },
      // global name when no nick
      [BOB]: { uid: BOB, username: "Bobby", status: "idle", roleColor: "#0000ff" },
      // username when neither; no presence → offline; no coloured role → white
      [CY]: { uid: CY, username: "cy", status: "offline", roleColor: "#ffffff" },
      // bots are members too
      [BOTTY]: { uid: BOTTY, username: "botty", status: "dnd", roleColor: "#ffffff" },
    });
    assert.deepEqual(source.getServerData(), {
      [GUILD]: { id: GUILD, name: "Test Guild", default: true, passworded: false },
    });
    assert.equal(source.getClientId(GUILD), undefined);
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord state: options for slugs, passworded, client id and offline members", async () => {
  const fake = await FakeDiscord.start({
    guilds: [smallGuild(), smallGuild(GUILD2, "Second")],
  });
  const { source } = makeSource(fake, {
    guildIds: [GUILD2, GUILD],
    slugs: { [GUILD]: "test" },
    passworded: true,
    clientId: "777000000000000001",
    includeOffline: false,
  });
  try {
    await source.start();
    assert.deepEqual(source.getServerData(), {
      [GUILD2]: { id: GUILD2, name: "Second", default: true, passworded: true },
      [GUILD]: { id: "test", name: "Test Guild", default: false, passworded: true },
    });
    assert.deepEqual(Object.keys(source.getUserData(GUILD)).sort(), [ADA, BOB, BOTTY].sort());
    assert.equal(source.getClientId(GUILD), "777000000000000001");
    assert.throws(() => source.getUserData("123"), /not available/);
    // OAuth check against the fake REST API: token "user-<id>" belongs to <id>.
    const src2 = makeSource(fake, { apiBase: fake.apiBase, passworded: true });
    await src2.source.start();
    const v = (t: string, u: { id: string; username: string }, id: string) =>
      src2.source.validateDiscordUser(t, u, id);
    assert.equal(await v(`user-${ADA}`, { id: ADA, username: "ada" }, GUILD), true);
    assert.equal(await v(`user-${ADA}`, { id: BOB, username: "bob" }, GUILD), false);
    assert.equal(await v("bad", { id: ADA, username: "ada" }, GUILD), false);
    assert.equal(await v(`user-${DEE}`, { id: DEE, username: "dee" }, GUILD), false);
    await src2.source.stop();
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord state: only listed guilds are served; a missing one is reported", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild(), smallGuild(GUILD2, "Other")] });
  const { source, logs } = makeSource(fake, { guildIds: [GUILD, "100000000000000009"] });
  try {
    await source.start();
    assert.deepEqual(Object.keys(source.getServerData()), [GUILD]);
    assert.ok(logs.some((l) => /not a member of guild 100000000000000009/.test(l.message)));
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord e2e: the joined client sees the guild and presence changes", async () => {
  const w = await world();
  try {
    const users = joinFrameUsers(w.client);
    assert.deepEqual(users[ADA], {
      uid: ADA,
      username: "Countess",
      status: "online",
      roleColor: "#ff0000",
    });
    assert.equal(users[CY].status, "offline");
    assert.equal(
      w.client.frames.find((f) => f.type === "server-join")!.data.serverName,
      "Test Guild",
    );

    w.fake.current.dispatch("PRESENCE_UPDATE", {
      guild_id: GUILD,
      user: { id: ADA },
      status: "idle",
      activities: [],
      client_status: { mobile: "idle" },
    });
    const f = await w.client.nextOf("presence");
    assert.deepEqual(f, { type: "presence", server: GUILD, data: { uid: ADA, status: "idle" } });

    // "invisible" and missing statuses show as offline
    w.fake.current.dispatch("PRESENCE_UPDATE", { guild_id: GUILD, user: { id: BOB } });
    const g = await w.client.nextOf("presence");
    assert.deepEqual(g.data, { uid: BOB, status: "offline" });

    // The next joiner sees the new state.
    const late = await joined(w.url, GUILD);
    assert.equal(joinFrameUsers(late)[ADA].status, "idle");
    await late.close();
  } finally {
    await w.close();
  }
});

Deno.test("discord e2e: member add, update and remove", async () => {
  const w = await world();
  try {
    const c = w.fake.current;
    c.dispatch("GUILD_MEMBER_ADD", {
      guild_id: GUILD,
      ...member(user(DEE, "dee", { global_name: "Dee" }), [ROLE_BLUE]),
    });
    let f = await w.client.nextOf("presence");
    assert.deepEqual(f.data, {
      uid: DEE,
      status: "offline",
      username: "Dee",
      roleColor: "#0000ff",
    });

    c.dispatch("GUILD_MEMBER_UPDATE", {
      guild_id: GUILD,
      ...member(user(DEE, "dee", { global_name: "Dee" }), [ROLE_BLUE, ROLE_RED], "Deedee"),
    });
    f = await w.client.nextOf("presence");
    assert.deepEqual(f.data, {
      uid: DEE,
      status: "offline",
      username: "Deedee",
      roleColor: "#ff0000",
    });

    c.dispatch("GUILD_MEMBER_REMOVE", { guild_id: GUILD, user: user(DEE, "dee") });
    f = await w.client.nextOf("presence");
    assert.deepEqual(f, {
      type: "presence",
      server: GUILD,
      data: { uid: DEE, status: "offline", delete: true },
    });
    assert.equal(w.source.getUserData(GUILD)[DEE], undefined);
  } finally {
    await w.close();
  }
});

Deno.test("discord e2e: role colour changes reach the members who have the role", async () => {
  const w = await world();
  try {
    const c = w.fake.current;
    // blue → green: only Bob shows blue (Ada's red is higher).
    c.dispatch("GUILD_ROLE_UPDATE", { guild_id: GUILD, role: role(ROLE_BLUE, 0x00ff00, 1) });
    let f = await w.client.nextOf("presence");
    assert.deepEqual(f.data, { uid: BOB, status: "idle", username: "Bobby", roleColor: "#00ff00" });
    // deleting red drops Ada to her next coloured role
    c.dispatch("GUILD_ROLE_DELETE", { guild_id: GUILD, role_id: ROLE_RED });
    f = await w.client.nextOf("presence");
    assert.deepEqual(f.data, {
      uid: ADA,
      status: "online",
      username: "Countess",
      roleColor: "#00ff00",
    });
    // a new role nobody has changes nothing; a later message proves the order
    c.dispatch("GUILD_ROLE_CREATE", {
      guild_id: GUILD,
      role: role("200000000000000009", 0xabcdef, 9),
    });
    c.dispatch("MESSAGE_CREATE", {
      id: "1",
      guild_id: GUILD,
      channel_id: CHANNEL,
      content: "after",
      author: user(CY, "cy"),
    });
    const next = await w.client.next();
    assert.equal(next.type, "message");
  } finally {
    await w.close();
  }
});

Deno.test("discord e2e: messages from people become message frames; bots and webhooks do not", async () => {
  const w = await world();
  try {
    const c = w.fake.current;
    const msg = (author: ReturnType<typeof user>, content: string, extra = {}) =>
      c.dispatch("MESSAGE_CREATE", {
        id: String(Math.floor(Math.random() * 1e9)),
        guild_id: GUILD,
        channel_id: CHANNEL,
        content,
        author,
        type: 0,
        ...extra,
      });
    msg(user(BOTTY, "botty", { bot: true }), "beep");
    msg(user(BOB, "hook"), "from a webhook", { webhook_id: "600000000000000001" });
    msg(user(ADA, "ada"), "", {}); // no content (e.g. an attachment)
    msg(user(ADA, "ada"), "hello d-zone");
    const f = await w.client.next();
    assert.deepEqual(f, {
      type: "message",
      server: GUILD,
      data: { uid: ADA, message: "hello d-zone", channel: CHANNEL },
    });
  } finally {
    await w.close();
  }
});

Deno.test("discord e2e: the channel filter keeps other channels quiet", async () => {
  const w = await world({ channelIds: [CHANNEL] });
  try {
    const c = w.fake.current;
    const msg = (channel: string, content: string) =>
      c.dispatch("MESSAGE_CREATE", {
        id: "1",
        guild_id: GUILD,
        channel_id: channel,
        content,
        author: user(BOB, "bob"),
      });
    msg(OTHER_CHANNEL, "elsewhere");
    msg(CHANNEL, "here");
    const f = await w.client.next();
    assert.equal(f.type, "message");
    assert.equal(f.data.message, "here");
    assert.equal(f.data.channel, CHANNEL);
  } finally {
    await w.close();
  }
});

Deno.test("discord e2e: a message from an unknown member adds them first", async () => {
  const w = await world();
  try {
    w.fake.current.dispatch("MESSAGE_CREATE", {
      id: "1",
      guild_id: GUILD,
      channel_id: CHANNEL,
      content: "hi, I am new here",
      author: user(DEE, "dee"),
      member: { nick: "D", roles: [ROLE_RED] },
    });
    const p = await w.client.next();
    assert.deepEqual(p.data, { uid: DEE, status: "offline", username: "D", roleColor: "#ff0000" });
    const m = await w.client.next();
    assert.equal(m.type, "message");
  } finally {
    await w.close();
  }
});

Deno.test("discord e2e: large guilds are completed with REQUEST_GUILD_MEMBERS chunks", async () => {
  const big = {
    ...smallGuild(),
    large: true,
    member_count: 6,
    // only the online members come with GUILD_CREATE
    members: smallGuild().members.filter((m) => m.user.id === ADA || m.user.id === BOB),
  };
  const fake = await FakeDiscord.start({ guilds: [big] });
  fake.onRequestMembers = (conn, d) => {
    const all = [
      ...smallGuild().members,
      member(user(DEE, "dee"), [ROLE_RED]),
      member(user("300000000000000006", "eve"), []),
    ];
    conn.dispatch("GUILD_MEMBERS_CHUNK", {
      guild_id: d.guild_id,
      members: all.slice(0, 3),
      presences: [],
      chunk_index: 0,
      chunk_count: 2,
      nonce: d.nonce,
    });
    conn.dispatch("GUILD_MEMBERS_CHUNK", {
      guild_id: d.guild_id,
      members: all.slice(3),
      presences: [{ user: { id: DEE }, status: "dnd" }],
      chunk_index: 1,
      chunk_count: 2,
      nonce: d.nonce,
    });
  };
  const { source } = makeSource(fake);
  const { server, url } = await serveSource(source);
  try {
    const req = (await fake.waitOp(8)).payload.d;
    assert.equal(req.guild_id, GUILD);
    assert.equal(req.query, "");
    assert.equal(req.limit, 0);
    assert.equal(req.presences, true);
    await fake.until(() => Object.keys(source.getUserData(GUILD)).length === 6, 5000, "6 members");
    const users = source.getUserData(GUILD);
    assert.equal(users[DEE].status, "dnd");
    assert.equal(users[DEE].roleColor, "#ff0000");
    assert.equal(users[ADA].status, "online");
    assert.equal(users[CY].status, "offline");
    const c = await joined(url, GUILD);
    assert.equal(Object.keys(joinFrameUsers(c)).length, 6);
    await c.close();
  } finally {
    await source.stop();
    await server.stop();
    await fake.stop();
  }
});

Deno.test("discord e2e: a new session re-syncs and broadcasts only the differences", async () => {
  const w = await world();
  try {
    // While the bot was away: Cy left, Bob went online.
    const next = smallGuild();
    next.members = next.members.filter((m) => m.user.id !== CY);
    next.member_count = 3;
    next.presences = next.presences.map((p) => p.user.id === BOB ? { ...p, status: "online" } : p);
    w.fake.guilds = [next];
    w.fake.current.send({ op: 9, d: false });
    const a = await w.client.nextOf("presence", 5000);
    const b = await w.client.nextOf("presence", 5000);
    const frames = [a.data, b.data].sort((x, y) => x.uid.localeCompare(y.uid));
    assert.deepEqual(frames, [
      { uid: BOB, status: "online" },
      { uid: CY, status: "offline", delete: true },
    ]);
  } finally {
    await w.close();
  }
});
