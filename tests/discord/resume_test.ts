// Failover of the Discord source (issue 19): a new source given the previous
// one's stored session and the guild snapshot viewers saw RESUMEs the session
// (Discord replays what was missed: nothing is lost), rebuilds roles and
// members in the background, and falls back to IDENTIFY when Discord refuses
// the session — broadcasting only what differs from the snapshot.
import assert from "node:assert/strict";
import type { GatewaySession, GatewaySessionStore } from "../../src/discord/_gateway_types.ts";
import type { GuildSnapshot } from "../../src/discord/mod.ts";
import {
  ADA,
  BOB,
  CHANNEL,
  CY,
  FakeDiscord,
  FAST_TIMING,
  GUILD,
  makeSource,
  type Payload,
  RecordingSink,
  role,
  ROLE_RED,
  smallGuild,
  user,
} from "../_fixtures/fake_discord.ts";

function memoryStore() {
  const saved = new Map<number, GatewaySession>();
  const store: GatewaySessionStore = {
    load: (shard) => Promise.resolve(saved.get(shard)),
    save: (shard, s) => Promise.resolve(void (s ? saved.set(shard, s) : saved.delete(shard))),
  };
  return { store, saved };
}

/** Answer op 8 with these members and presences in one chunk. */
function answerMembers(fake: FakeDiscord, members: unknown[], presences: unknown[]) {
  fake.onRequestMembers = (conn, d: Payload["d"]) => {
    conn.dispatch("GUILD_MEMBERS_CHUNK", {
      guild_id: d.guild_id,
      members,
      presences,
      chunk_index: 0,
      chunk_count: 1,
      nonce: d.nonce,
    });
  };
}

/** Run a first source until ready, stop it, and return its session and the snapshot viewers saw. */
async function firstPublisher(fake: FakeDiscord, mem: ReturnType<typeof memoryStore>) {
  const { source } = makeSource(fake, {
    resume: { sessions: mem.store, guilds: () => Promise.resolve(undefined) },
  });
  await source.start(new RecordingSink());
  await fake.until(() => mem.saved.get(0)?.sessionId === "session-1", 10_000, "session saved");
  const snapshot: GuildSnapshot[] = [{
    id: GUILD,
    name: "Test Guild",
    users: source.getUserData(GUILD),
  }];
  await source.stop(); // a resumable close: the session stays valid at Discord
  return snapshot;
}

Deno.test("takeover: RESUMEs the stored session on the snapshot, replays what was missed, rebuilds roles", async () => {
  const guild = smallGuild();
  await using fake = await FakeDiscord.start({ guilds: [guild] });
  // Discord's member list after the time away: BOB left, CY came online.
  answerMembers(
    fake,
    guild.members.filter((m) => m.user.id !== BOB),
    [...guild.presences.filter((p) => p.user.id !== BOB), { user: { id: CY }, status: "online" }],
  );
  const mem = memoryStore();
  const snapshot = await firstPublisher(fake, mem);
  assert.equal(snapshot[0].users?.[ADA]?.roleColor, "#ff0000");
  // Nobody is connected: Discord keeps these for the session.
  fake.emit("session-1", "PRESENCE_UPDATE", {
    guild_id: GUILD,
    user: { id: CY },
    status: "online",
  });
  fake.emit("session-1", "MESSAGE_CREATE", {
    id: "900000000000000001",
    guild_id: GUILD,
    channel_id: CHANNEL,
    author: user(ADA, "ada"),
    member: { roles: [], nick: "Countess" },
    content: "said while nobody was connected",
  });
  fake.emit("session-1", "GUILD_MEMBER_REMOVE", { guild_id: GUILD, user: user(BOB, "bob") });

  const sink = new RecordingSink();
  const { source, logs } = makeSource(fake, {
    apiBase: fake.apiBase,
    resume: { sessions: mem.store, guilds: () => Promise.resolve(snapshot) },
  });
  try {
    await source.start(sink);
    assert.equal(fake.ops(2).length, 1, "the second source did not IDENTIFY");
    assert.equal(fake.ops(6).at(-1)?.payload.d.session_id, "session-1");
    // Every missed dispatch arrived, in order.
    assert.deepEqual(sink.messages.map((m) => m.message), ["said while nobody was connected"]);
    assert.deepEqual(
      sink.presences.map((p) => [p.uid, p.status, p.delete ?? false]),
      [[CY, "online", false], [BOB, "offline", true]],
    );
    const users = source.getUserData(GUILD);
    assert.equal(users[CY].status, "online");
    assert.equal(users[BOB], undefined);
    assert.equal(users[ADA].roleColor, "#ff0000", "the snapshot's colour until the rebuild");
    // The rebuild: roles by REST, members by op 8; the same list broadcasts nothing.
    await fake.until(() => fake.ops(8).length === 1, 10_000, "member request after resume");
    assert.ok(fake.paths().includes(`/guilds/${GUILD}/roles`));
    await fake.until(
      () => logs.some((l) => /member list complete/.test(l.message)),
      10_000,
      "rebuilt list",
    );
    assert.equal(sink.presences.length, 2, "the rebuilt list matches: nothing to broadcast");
    // Roles are known again: a colour change reaches the members who hold the role.
    fake.current.dispatch("GUILD_ROLE_UPDATE", {
      guild_id: GUILD,
      role: role(ROLE_RED, 0x00ff00, 3, "red"),
    });
    await fake.until(
      () => sink.presences.some((p) => p.roleColor === "#00ff00"),
      10_000,
      "recolour",
    );
    assert.equal(sink.presences.at(-1)?.uid, ADA);
  } finally {
    await source.stop();
  }
});

Deno.test("takeover: a session Discord refuses falls back to IDENTIFY and broadcasts only the differences", async () => {
  const guild = smallGuild();
  await using fake = await FakeDiscord.start({ guilds: [guild] });
  const mem = memoryStore();
  const snapshot = await firstPublisher(fake, mem);
  const ghost = "300000000000000009";
  // The snapshot is stale: a member who left, and CY shown online though offline.
  snapshot[0].users![ghost] = { username: "ghost", status: "online", roleColor: "#ffffff" };
  snapshot[0].users![CY] = { ...snapshot[0].users![CY], status: "online" };
  fake.resumeReply = "invalid";
  const sink = new RecordingSink();
  const { source } = makeSource(fake, {
    apiBase: fake.apiBase,
    resume: { sessions: mem.store, guilds: () => Promise.resolve(snapshot) },
  });
  try {
    await source.start(sink);
    await fake.until(() => fake.ops(2).length === 2, 10_000, "a second IDENTIFY");
    await fake.until(() => sink.presences.length >= 2, 10_000, "the differences");
    assert.deepEqual(
      sink.presences.map((p) => [p.uid, p.status, p.delete ?? false]).sort(),
      [[CY, "offline", false], [ghost, "offline", true]].sort(),
    );
    assert.equal(source.getUserData(GUILD)[ghost], undefined);
    await fake.until(
      () => mem.saved.get(0)?.sessionId === "session-2",
      10_000,
      "new session saved",
    );
  } finally {
    await source.stop();
  }
});

Deno.test("takeover: without a snapshot the stored session is not resumed (the guilds would be empty)", async () => {
  await using fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const mem = memoryStore();
  await firstPublisher(fake, mem);
  const { source, logs } = makeSource(fake, {
    resume: { sessions: mem.store, guilds: () => Promise.reject(new Error("redis down")) },
  });
  try {
    await source.start(new RecordingSink());
    assert.equal(fake.ops(6).length, 0, "no RESUME");
    assert.equal(fake.ops(2).length, 2);
    assert.ok(logs.some((l) => /no guild snapshot to resume on \(redis down\)/.test(l.message)));
    assert.equal(source.getUserData(GUILD)[ADA].roleColor, "#ff0000");
  } finally {
    await source.stop();
  }
});

Deno.test("resume option: a malformed one is a TypeError naming it", () => {
  assert.throws(
    () =>
      makeSource({ token: "t", gatewayUrl: "ws://127.0.0.1:1/" } as unknown as FakeDiscord, {
        resume: { sessions: {} } as never,
      }),
    /resume: expected \{ sessions: \{ load, save \}, guilds \}/,
  );
});

Deno.test("takeover: a guild listed without users is rebuilt from Discord after the RESUME", async () => {
  const guild = smallGuild();
  await using fake = await FakeDiscord.start({ guilds: [guild] });
  answerMembers(fake, guild.members, guild.presences);
  const mem = memoryStore();
  await firstPublisher(fake, mem);
  const { source } = makeSource(fake, {
    apiBase: fake.apiBase,
    resume: {
      sessions: mem.store,
      guilds: () => Promise.resolve([{ id: GUILD, name: "Test Guild" }]), // no user map kept
    },
  });
  try {
    await source.start(new RecordingSink());
    assert.equal(fake.ops(2).length, 1, "resumed, not identified");
    await fake.until(() => Object.keys(source.getUserData(GUILD)).length === 4, 10_000, "rebuilt");
    const users = source.getUserData(GUILD);
    assert.equal(users[ADA].roleColor, "#ff0000", "colour from the roles read by REST");
    assert.equal(users[ADA].username, "Countess");
  } finally {
    await source.stop();
  }
});

Deno.test("takeover after a crash: saving after every dispatch, the survivor replays only what the dead one never broadcast", async () => {
  await using fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const mem = memoryStore();
  let dead = false; // the process is killed: from now on nothing reaches the store
  const sessions: GatewaySessionStore = {
    load: (shard) => mem.store.load(shard),
    save: (shard, s) => dead ? Promise.resolve() : mem.store.save(shard, s),
  };
  const timing = { ...FAST_TIMING, sessionSaveIntervalMs: 0 };
  const sinkA = new RecordingSink();
  const a = makeSource(fake, {
    timing,
    resume: { sessions, guilds: () => Promise.resolve(undefined) },
  }).source;
  await a.start(sinkA);
  const say = (content: string) =>
    fake.emit("session-1", "MESSAGE_CREATE", {
      id: "1",
      guild_id: GUILD,
      channel_id: CHANNEL,
      author: user(ADA, "ada"),
      content,
    });
  for (let i = 1; i <= 20; i++) say(`before ${i}`);
  await fake.until(() => sinkA.messages.length === 20, 10_000, "A broadcast 20 lines");
  // Killed right now: what the store holds is all a survivor gets.
  assert.equal(mem.saved.get(0)?.seq, fake.seq, "the store lags the broadcasts");
  const snapshot: GuildSnapshot[] = [{
    id: GUILD,
    name: "Test Guild",
    users: a.getUserData(GUILD),
  }];
  dead = true;
  await a.stop();
  for (let i = 1; i <= 5; i++) say(`after ${i}`);
  const sinkB = new RecordingSink();
  const b = makeSource(fake, {
    apiBase: fake.apiBase,
    timing,
    resume: { sessions, guilds: () => Promise.resolve(snapshot) },
  }).source;
  try {
    await b.start(sinkB);
    await fake.until(() => sinkB.messages.length >= 5, 10_000, "the missed lines");
    // Every line exactly once across both publishers: none lost, none repeated.
    const all = [...sinkA.messages, ...sinkB.messages].map((m) => m.message);
    assert.deepEqual(all, [
      ...Array.from({ length: 20 }, (_, i) => `before ${i + 1}`),
      ...Array.from({ length: 5 }, (_, i) => `after ${i + 1}`),
    ]);
  } finally {
    await b.stop();
  }
});

Deno.test("takeover with 2 shards: each shard RESUMEs its own session and gets its own replay", async () => {
  const a = GUILD; // (id >> 22) % 2 === 0
  const b = String((1n << 22n) + 1n); // (id >> 22) % 2 === 1
  await using fake = await FakeDiscord.start({
    shards: 2,
    guilds: [smallGuild(a, "A"), smallGuild(b, "B")],
  });
  const mem = memoryStore();
  const first = makeSource(fake, {
    shards: 2,
    resume: { sessions: mem.store, guilds: () => Promise.resolve(undefined) },
  }).source;
  await first.start(new RecordingSink());
  await fake.until(() => mem.saved.size === 2, 10_000, "both sessions saved");
  const snapshot: GuildSnapshot[] = [a, b].map((id) => ({
    id,
    name: id,
    users: first.getUserData(id),
  }));
  await first.stop();
  const sessionOf = (shard: number) => mem.saved.get(shard)!.sessionId;
  const line = (guild_id: string, content: string) => ({
    id: "1",
    guild_id,
    channel_id: CHANNEL,
    author: user(ADA, "ada"),
    content,
  });
  fake.emit(sessionOf(0), "MESSAGE_CREATE", line(a, "to shard 0"));
  fake.emit(sessionOf(1), "MESSAGE_CREATE", line(b, "to shard 1"));
  const sink = new RecordingSink();
  const second = makeSource(fake, {
    apiBase: fake.apiBase,
    shards: 2,
    resume: { sessions: mem.store, guilds: () => Promise.resolve(snapshot) },
  }).source;
  try {
    await second.start(sink);
    assert.equal(fake.ops(2).length, 2, "only the first source's two IDENTIFYs");
    assert.deepEqual(
      fake.ops(6).map((r) => r.payload.d.session_id).sort(),
      [sessionOf(0), sessionOf(1)].sort(),
    );
    await fake.until(() => sink.messages.length === 2, 10_000, "both replays");
    assert.deepEqual(
      sink.messages.map((m) => `${m.server} ${m.message}`).sort(),
      [`${a} to shard 0`, `${b} to shard 1`],
    );
  } finally {
    await second.stop();
  }
});

Deno.test("takeover with another shard count: the stored session is not resumed, each shard IDENTIFYs", async () => {
  const a = GUILD; // (id >> 22) % 2 === 0
  const b = String((1n << 22n) + 1n); // (id >> 22) % 2 === 1
  await using fake = await FakeDiscord.start({ guilds: [smallGuild(a, "A"), smallGuild(b, "B")] });
  const mem = memoryStore();
  const snapshot = await firstPublisher(fake, mem);
  assert.equal(mem.saved.get(0)?.shards, 1, "the record names the shard count");
  // The bot grew: the next publisher runs 2 shards, and shard 0 no longer has guild B.
  fake.shards = 2;
  const sink = new RecordingSink();
  const second = makeSource(fake, {
    shards: 2,
    resume: { sessions: mem.store, guilds: () => Promise.resolve(snapshot) },
  }).source;
  try {
    await second.start(sink);
    assert.equal(fake.ops(6).length, 0, "no RESUME of a 1-shard session on a 2-shard process");
    assert.equal(fake.ops(2).length, 3, "the first IDENTIFY, then one per shard");
    assert.deepEqual(fake.ops(2).slice(1).map((r) => r.payload.d.shard).sort(), [[0, 2], [1, 2]]);
    assert.deepEqual(second.guildIds.sort(), [a, b].sort());
    await fake.until(() => mem.saved.get(1)?.shards === 2, 10_000, "the new sessions saved");
    assert.equal(mem.saved.get(0)?.shards, 2);
  } finally {
    await second.stop();
  }
});
