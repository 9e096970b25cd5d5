// The pure reducer: dispatch in, outputs out, no sockets.
import assert from "node:assert/strict";
import { resolveServer, type ServerConfig, serverConfigSchema } from "../../src/discord/_config.ts";
import {
  type Output,
  reduce,
  reissueMemberRequests,
  SourceState,
} from "../../src/discord/_reducer.ts";
import {
  ADA,
  BOB,
  CHANNEL,
  CY,
  DEE,
  GUILD,
  GUILD2,
  member,
  OTHER_CHANNEL,
  smallGuild,
  user,
} from "../_fixtures/fake_discord.ts";

function state(entries: ServerConfig[] = [], infoCommand?: string, all = true) {
  const byId = new Map(entries.map((e) => [e.id, serverConfigSchema.parse(e)]));
  return new SourceState({
    serves: (id) => all || byId.has(id),
    settings: (id) =>
      resolveServer(id, byId.get(id), {
        passworded: false,
        includeOffline: true,
        listenChannels: undefined,
        url: undefined,
      }),
    infoCommand,
  });
}

const presences = (out: Output[]) => out.flatMap((o) => o.kind === "presence" ? [o.event] : []);
const kinds = (out: Output[]) => out.map((o) => o.kind).filter((k) => k !== "log");

/** A large guild whose GUILD_CREATE carries only some members and no presences. */
function partial(id = GUILD) {
  return {
    ...smallGuild(id),
    large: true,
    member_count: 4,
    members: smallGuild(id).members.slice(0, 1),
    presences: [],
  };
}

function chunk(
  guildId: string,
  nonce: string,
  i: number,
  n: number,
  members: unknown[],
  pres: unknown[] = [],
) {
  return {
    guild_id: guildId,
    members,
    presences: pres,
    chunk_index: i,
    chunk_count: n,
    nonce,
  };
}

function nonceOf(out: Output[]): string {
  const r = out.find((o) => o.kind === "request-members");
  if (!r || r.kind !== "request-members") throw new Error("no member request");
  return r.nonce;
}

Deno.test("reducer: a new guild arrives silently; a presence change is one status-only event", () => {
  const s = state();
  const out = reduce(s, "GUILD_CREATE", smallGuild());
  assert.deepEqual(kinds(out), ["guild-arrived"]);
  const p = reduce(s, "PRESENCE_UPDATE", { guild_id: GUILD, user: { id: ADA }, status: "dnd" });
  assert.deepEqual(presences(p), [{ server: GUILD, uid: ADA, status: "dnd" }]);
  // the same status again changes nothing
  assert.deepEqual(
    presences(reduce(s, "PRESENCE_UPDATE", { guild_id: GUILD, user: { id: ADA }, status: "dnd" })),
    [],
  );
  // a guild that is not served is ignored
  const only = state([{ id: GUILD }], undefined, false);
  assert.deepEqual(kinds(reduce(only, "GUILD_CREATE", smallGuild(GUILD2))), []);
  assert.equal(only.guilds.size, 0);
});

Deno.test("reducer (issue 13.5): a large-guild resync broadcasts only real changes", () => {
  const s = state();
  reduce(s, "GUILD_CREATE", smallGuild()); // Ada online, Bob idle, Cy offline, Botty dnd
  // Re-IDENTIFY: the partial GUILD_CREATE has no presences and one member.
  let out = reduce(s, "GUILD_CREATE", partial());
  assert.deepEqual(presences(out), [], "nothing flaps while the list loads");
  assert.equal(s.guilds.get(GUILD)!.statusOf(ADA), "online", "viewers keep the old state");
  const nonce = nonceOf(out);
  // A real change during the load goes out at once...
  out = reduce(s, "PRESENCE_UPDATE", { guild_id: GUILD, user: { id: BOB }, status: "online" });
  assert.deepEqual(presences(out), [{ server: GUILD, uid: BOB, status: "online" }]);
  // ...and is not repeated at the end. Cy left while we were away.
  const all = smallGuild().members.filter((m) => m.user.id !== CY);
  out = reduce(
    s,
    "GUILD_MEMBERS_CHUNK",
    chunk(GUILD, nonce, 0, 2, all.slice(0, 2), [
      { user: { id: ADA }, status: "online" },
    ]),
  );
  assert.deepEqual(presences(out), []);
  out = reduce(
    s,
    "GUILD_MEMBERS_CHUNK",
    chunk(GUILD, nonce, 1, 2, all.slice(2), [
      { user: { id: "300000000000000004" }, status: "dnd" },
    ]),
  );
  assert.deepEqual(presences(out), [{ server: GUILD, uid: CY, status: "offline", delete: true }]);
  assert.ok(kinds(out).includes("members-complete"));
  assert.equal(s.syncs.size, 0);
  assert.equal(s.guilds.get(GUILD)!.statusOf(BOB), "online");
});

Deno.test("reducer (issue 13.4): chunks of an earlier request do not count; reissue gives a new nonce", () => {
  const s = state();
  const first = nonceOf(reduce(s, "GUILD_CREATE", partial()));
  const [again] = reissueMemberRequests(s);
  assert.equal(again.kind, "request-members");
  const second = (again as { nonce: string }).nonce;
  assert.notEqual(second, first);
  const members = smallGuild().members;
  let out = reduce(s, "GUILD_MEMBERS_CHUNK", chunk(GUILD, first, 0, 1, members));
  assert.equal(s.syncs.size, 1, "a stale chunk does not complete the list");
  assert.deepEqual(presences(out), []);
  out = reduce(s, "GUILD_MEMBERS_CHUNK", chunk(GUILD, second, 0, 1, members));
  assert.equal(s.syncs.size, 0);
  // The first load of a guild adds the members the partial GUILD_CREATE lacked.
  assert.deepEqual(presences(out).map((p) => p.uid).sort(), [BOB, CY, "300000000000000004"].sort());
  assert.deepEqual(reissueMemberRequests(s), [], "nothing left to ask for");
  // RATE_LIMITED for op 8 asks for a delayed retry
  const s2 = state();
  reduce(s2, "GUILD_CREATE", partial());
  out = reduce(s2, "RATE_LIMITED", { opcode: 8, retry_after: 1.5, meta: { guild_id: GUILD } });
  assert.deepEqual(out.filter((o) => o.kind === "retry-members"), [
    { kind: "retry-members", guildId: GUILD, afterMs: 1600 },
  ]);
});

Deno.test("reducer (issue 13.9): guilds that go away and members who leave", () => {
  const s = state();
  reduce(s, "GUILD_CREATE", smallGuild());
  reduce(s, "GUILD_CREATE", smallGuild(GUILD2, "Two"));
  // an outage keeps the state
  assert.deepEqual(kinds(reduce(s, "GUILD_DELETE", { id: GUILD, unavailable: true })), []);
  assert.ok(s.guilds.has(GUILD));
  // removal drops it
  assert.deepEqual(kinds(reduce(s, "GUILD_DELETE", { id: GUILD })), ["guild-gone"]);
  assert.ok(!s.guilds.has(GUILD));
  // a READY without a guild we hold (removed while away) drops it too
  const out = reduce(s, "READY", { session_id: "x", guilds: [] });
  assert.deepEqual(out.filter((o) => o.kind === "guild-gone"), [
    { kind: "guild-gone", guildId: GUILD2 },
  ]);
  const s2 = state();
  reduce(s2, "GUILD_CREATE", smallGuild());
  const left = reduce(s2, "GUILD_MEMBER_REMOVE", { guild_id: GUILD, user: { id: BOB } });
  assert.deepEqual(kinds(left), ["presence", "member-left"]);
  assert.deepEqual(left[1], { kind: "member-left", guildId: GUILD, userId: BOB });
});

Deno.test("reducer: channel filters by id or name (threads by parent), ignored users, info command", () => {
  const s = state([
    { id: GUILD, listenChannels: ["general"], ignoreUsers: ["bob", CY] },
    { id: GUILD2, ignoreChannels: [OTHER_CHANNEL] },
  ], "!d-zone");
  const g = { ...smallGuild(), channels: [{ id: CHANNEL, type: 0, name: "general" }] };
  reduce(s, "GUILD_CREATE", g);
  reduce(s, "GUILD_CREATE", smallGuild(GUILD2));
  // ignored users are not shown at all
  assert.deepEqual(
    Object.keys(s.guilds.get(GUILD)!.userMap()).sort(),
    [ADA, "300000000000000004"].sort(),
  );
  const say = (guild: string, channel: string, who: string, content: string) =>
    reduce(s, "MESSAGE_CREATE", {
      id: "1",
      guild_id: guild,
      channel_id: channel,
      content,
      author: user(who, who === ADA ? "ada" : who === BOB ? "bob" : "x"),
    }).filter((o) => o.kind === "message" || o.kind === "info-command").map((o) => o.kind);
  assert.deepEqual(say(GUILD, CHANNEL, ADA, "hi"), ["message"]);
  assert.deepEqual(say(GUILD, OTHER_CHANNEL, ADA, "hi"), []);
  assert.deepEqual(say(GUILD, CHANNEL, BOB, "hi"), [], "ignored by username");
  assert.deepEqual(say(GUILD, CHANNEL, CY, "hi"), [], "ignored by id");
  // a thread under #general passes by its parent's name
  const THREAD = "500000000000000009";
  reduce(s, "THREAD_CREATE", { id: THREAD, guild_id: GUILD, name: "t", parent_id: CHANNEL });
  assert.deepEqual(say(GUILD, THREAD, ADA, "in a thread"), ["message"]);
  // a renamed channel no longer matches
  reduce(s, "CHANNEL_UPDATE", { id: CHANNEL, guild_id: GUILD, name: "random" });
  assert.deepEqual(say(GUILD, CHANNEL, ADA, "hi"), []);
  assert.deepEqual(say(GUILD2, OTHER_CHANNEL, ADA, "hi"), []);
  assert.deepEqual(say(GUILD2, CHANNEL, ADA, "hi"), ["message"]);
  // the info command is answered even where messages are not shown
  assert.deepEqual(say(GUILD, OTHER_CHANNEL, ADA, " !D-Zone "), ["info-command"]);
  assert.deepEqual(say(GUILD2, CHANNEL, DEE, "!d-zone"), ["info-command", "message"]);
});

Deno.test("reducer: events during a load reach the shadow; member add counts once", () => {
  const s = state();
  reduce(s, "GUILD_CREATE", partial());
  const nonce = [...s.syncs.values()][0].nonce;
  reduce(s, "GUILD_MEMBER_ADD", { guild_id: GUILD, ...member(user(DEE, "dee")) });
  const del = reduce(s, "GUILD_ROLE_DELETE", { guild_id: GUILD, role_id: "200000000000000001" });
  // Ada (live already) loses red at once: blue now.
  assert.deepEqual(presences(del).map((p) => [p.uid, p.roleColor]), [[ADA, "#0000ff"]]);
  const out = reduce(s, "GUILD_MEMBERS_CHUNK", chunk(GUILD, nonce, 0, 1, smallGuild().members));
  // Dee was added live already, so completing the list does not announce her again.
  assert.ok(!presences(out).some((p) => p.uid === DEE));
  const g = s.guilds.get(GUILD)!;
  assert.ok(g.members.has(DEE));
  // The shadow saw the role deletion too: no stale red comes back, nothing repeated.
  assert.equal(g.entry(ADA)!.roleColor, "#0000ff");
  assert.ok(!presences(out).some((p) => p.uid === ADA));
});
