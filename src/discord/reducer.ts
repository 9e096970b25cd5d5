/**
 * Gateway dispatch → guild state → what viewers should see. {@link reduce}
 * takes the state and one dispatch and returns the outputs (presence and
 * message events, member requests to send, guilds that went away, log
 * lines); it does no I/O and reads no clock, so every rule is unit-tested
 * without sockets. The state is updated in place: a guild may hold 100k
 * members and copying it per event would cost more than the event.
 *
 * Member lists of large guilds arrive in chunks. While a list is loading,
 * the chunks fill a shadow copy of the guild that also receives every live
 * event; only when the list is complete is the shadow compared with the
 * live state and swapped in, so a resync broadcasts real changes only (no
 * offline/online flap for members whose presence the partial GUILD_CREATE
 * left out, no stray `offline` before a `delete`).
 *
 * @module
 */
import { z } from "zod";
import type { ChatEvent, PresenceEvent } from "../events.ts";
import type { UserEntry } from "../protocol.ts";
import { describeZodError } from "../_zod.ts";
import type { ResolvedServer } from "./config.ts";
import {
  guildCreateSchema,
  guildDeleteSchema,
  guildUpdateSchema,
  memberEventSchema,
  memberRemoveSchema,
  memberSchema,
  membersChunkSchema,
  messageCreateSchema,
  parseEach,
  presenceSchema,
  presenceUpdateSchema,
  rateLimitedSchema,
  readySchema,
  roleDeleteSchema,
  roleEventSchema,
  roleSchema,
  snowflake,
} from "./schemas.ts";
import {
  diffEntry,
  diffSnapshots,
  type EntryChange,
  GuildState,
  memberRecord,
  toStatus,
} from "./state.ts";

/** Op 8 (REQUEST_GUILD_MEMBERS), the only opcode a RATE_LIMITED dispatch names for us. */
const REQUEST_GUILD_MEMBERS = 8;

/** Something the I/O shell must do after a dispatch. */
export type Output =
  /** Broadcast a presence change. */
  | { kind: "presence"; event: PresenceEvent }
  /** Broadcast a chat message. */
  | { kind: "message"; event: ChatEvent }
  /** Send op 8 for this guild with this nonce. */
  | { kind: "request-members"; guildId: string; nonce: string }
  /** Re-issue the member request of this guild after `afterMs` (Discord rate-limited it). */
  | { kind: "retry-members"; guildId: string; afterMs: number }
  /** A guild's member list is complete. */
  | { kind: "members-complete"; guildId: string }
  /** READY: the ids of the guilds this session serves. */
  | { kind: "ready"; guildIds: string[] }
  /** A served guild's data arrived (GUILD_CREATE). */
  | { kind: "guild-arrived"; guildId: string }
  /** A guild is gone for good (bot removed, or missing from READY): tell its viewers. */
  | { kind: "guild-gone"; guildId: string }
  /** A member left a guild (cached logins must be forgotten). */
  | { kind: "member-left"; guildId: string; userId: string }
  /** Someone sent the info command in this channel. */
  | { kind: "info-command"; guildId: string; channelId: string }
  /** A line for the log. */
  | { kind: "log"; level: "debug" | "info" | "warn"; message: string };

/** How the reducer decides what to serve and how. */
export interface ReducerConfig {
  /** Whether this guild is served at all. */
  serves(guildId: string): boolean;
  /** The settings of a served guild. */
  settings(guildId: string): ResolvedServer;
  /** Message text that triggers the info reply (compared case-insensitively), if any. */
  infoCommand?: string;
}

/** A member list being loaded into a shadow copy. */
export interface MemberSync {
  /** The guild as it will be once the list is complete. */
  shadow: GuildState;
  /** Nonce of the request whose chunks count; a new request gets a new one. */
  nonce: string;
  /** Chunk indexes received for `nonce`. */
  chunks: Set<number>;
}

/** Everything the reducer keeps: served guilds and running member syncs. */
export class SourceState {
  /** Served guilds by id, as viewers see them. */
  readonly guilds: Map<string, GuildState> = new Map();
  /** Member lists still loading, by guild id. */
  readonly syncs: Map<string, MemberSync> = new Map();
  /** The rules. */
  readonly config: ReducerConfig;
  #nonces = 0;

  /** An empty state. */
  constructor(config: ReducerConfig) {
    this.config = config;
  }

  /** A fresh nonce for op 8 (Discord allows 32 bytes). */
  nextNonce(): string {
    return `dz${(++this.#nonces).toString(36)}`;
  }
}

const channelSchema = z.looseObject({
  id: snowflake,
  guild_id: snowflake.optional(),
  name: z.string().nullable().optional(),
  parent_id: snowflake.nullable().optional(),
});

/**
 * Apply one dispatch to `state`; returns what to broadcast, send and log.
 *
 * @example
 * ```ts
 * import { resolveServer } from "./config.ts";
 * import { reduce, SourceState } from "./reducer.ts";
 * const defaults = { passworded: false, includeOffline: true, listenChannels: undefined, url: undefined };
 * const state = new SourceState({
 *   serves: () => true,
 *   settings: (id) => resolveServer(id, undefined, defaults),
 * });
 * const guild_id = "100000000000000001";
 * const user = { id: "300000000000000001", username: "ada" };
 * reduce(state, "GUILD_CREATE", { id: guild_id, name: "G", members: [{ user, roles: [] }] });
 * const out = reduce(state, "PRESENCE_UPDATE", { guild_id, user: { id: user.id }, status: "idle" });
 * const p = out.find((o) => o.kind === "presence");
 * if (p?.kind !== "presence" || p.event.status !== "idle") throw new Error("unexpected");
 * ```
 */
export function reduce(state: SourceState, t: string, d: unknown): Output[] {
  const out: Output[] = [];
  switch (t) {
    case "READY":
      onReady(state, d, out);
      break;
    case "GUILD_CREATE":
      onGuildCreate(state, d, out);
      break;
    case "GUILD_UPDATE":
      onGuildUpdate(state, d, out);
      break;
    case "GUILD_DELETE":
      onGuildDelete(state, d, out);
      break;
    case "GUILD_MEMBERS_CHUNK":
      onMembersChunk(state, d, out);
      break;
    case "GUILD_MEMBER_ADD":
    case "GUILD_MEMBER_UPDATE":
      onMemberUpsert(state, t, d, out);
      break;
    case "GUILD_MEMBER_REMOVE":
      onMemberRemove(state, d, out);
      break;
    case "GUILD_ROLE_CREATE":
    case "GUILD_ROLE_UPDATE":
      onRoleUpsert(state, t, d, out);
      break;
    case "GUILD_ROLE_DELETE":
      onRoleDelete(state, d, out);
      break;
    case "CHANNEL_CREATE":
    case "CHANNEL_UPDATE":
    case "THREAD_CREATE":
    case "THREAD_UPDATE":
      onChannel(state, t, d, false, out);
      break;
    case "CHANNEL_DELETE":
    case "THREAD_DELETE":
      onChannel(state, t, d, true, out);
      break;
    case "PRESENCE_UPDATE":
      onPresence(state, d, out);
      break;
    case "MESSAGE_CREATE":
      onMessage(state, d, out);
      break;
    case "RATE_LIMITED":
      onRateLimited(state, d, out);
      break;
  }
  return out;
}

/**
 * New op 8 requests, with new nonces, for every guild whose member list is
 * still incomplete (or only those in `guildIds`). Called after a RESUME (a
 * request queued on the old connection may never have reached Discord) and
 * when a request got no complete answer in time.
 */
export function reissueMemberRequests(state: SourceState, guildIds?: Iterable<string>): Output[] {
  const out: Output[] = [];
  for (const id of guildIds ?? [...state.syncs.keys()]) {
    const sync = state.syncs.get(id);
    if (!sync) continue;
    sync.nonce = state.nextNonce();
    sync.chunks.clear();
    out.push({ kind: "request-members", guildId: id, nonce: sync.nonce });
  }
  return out;
}

function bad(t: string, error: z.ZodError, out: Output[]): void {
  out.push({
    kind: "log",
    level: "warn",
    message: `ignored a malformed ${t}: ${describeZodError(error)}`,
  });
}

function onReady(state: SourceState, d: unknown, out: Output[]): void {
  const r = readySchema.safeParse(d);
  if (!r.success) return;
  const ids = (r.data.guilds ?? []).map((g) => g.id);
  const listed = new Set(ids);
  // A new session lists every guild the bot is in: one we hold that is missing
  // was left while we were away; its data would stay frozen for ever.
  for (const [id, g] of state.guilds) {
    if (listed.has(id)) continue;
    dropGuild(state, id, out);
    out.push({
      kind: "log",
      level: "warn",
      message: `guild "${g.name}" (${id}) is not in READY: the bot was removed; dropping it`,
    });
  }
  out.push({ kind: "ready", guildIds: ids });
}

function dropGuild(state: SourceState, id: string, out: Output[]): void {
  state.guilds.delete(id);
  state.syncs.delete(id);
  out.push({ kind: "guild-gone", guildId: id });
}

/** A guild built from a GUILD_CREATE payload. */
function buildGuild(
  state: SourceState,
  data: z.infer<typeof guildCreateSchema>,
  parts: Parts,
): GuildState {
  const s = state.config.settings(data.id);
  const g = new GuildState(data.id, data.name ?? data.id, s.includeOffline, s.ignoreUsers);
  g.memberCount = data.member_count ?? parts.members.length;
  for (const r of parts.roles) g.upsertRole(r);
  for (const m of parts.members) g.upsertMember(memberRecord(m));
  for (const p of parts.presences) g.setStatus(p.user.id, toStatus(p.status));
  for (const c of parts.channels) {
    g.channels.set(c.id, { name: c.name ?? null, parentId: c.parent_id ?? null });
  }
  return g;
}

interface Parts {
  members: z.infer<typeof memberSchema>[];
  presences: z.infer<typeof presenceSchema>[];
  roles: z.infer<typeof roleSchema>[];
  channels: z.infer<typeof channelSchema>[];
}

function onGuildCreate(state: SourceState, d: unknown, out: Output[]): void {
  const p = guildCreateSchema.safeParse(d);
  if (!p.success) return bad("GUILD_CREATE", p.error, out);
  const data = p.data;
  if (data.unavailable === true || !state.config.serves(data.id)) return;
  const raw = data as Record<string, unknown>;
  const members = parseEach(memberSchema, data.members);
  const presences = parseEach(presenceSchema, data.presences);
  const roles = parseEach(roleSchema, data.roles);
  const channels = parseEach(channelSchema, [
    ...(Array.isArray(raw.channels) ? raw.channels : []),
    ...(Array.isArray(raw.threads) ? raw.threads : []),
  ]);
  const badCount = members.bad + presences.bad + roles.bad;
  if (badCount > 0) {
    out.push({
      kind: "log",
      level: "warn",
      message: `GUILD_CREATE ${data.id}: ignored ${badCount} malformed member/presence/role(s)`,
    });
  }
  const parts: Parts = {
    members: members.ok,
    presences: presences.ok,
    roles: roles.ok,
    channels: channels.ok,
  };
  const fresh = buildGuild(state, data, parts);
  const needChunks = data.large === true || fresh.memberCount > members.ok.length;
  const live = state.guilds.get(data.id);
  if (!live) {
    state.guilds.set(data.id, fresh);
  } else if (!needChunks) {
    // A complete list: compare and swap now.
    emitChanges(data.id, diffSnapshots(live.snapshot(), fresh.snapshot()), out);
    state.guilds.set(data.id, fresh);
  } else {
    // Partial (large guild): viewers keep the old state until the list is complete.
    live.name = fresh.name;
  }
  if (needChunks) {
    const nonce = state.nextNonce();
    state.syncs.set(data.id, { shadow: buildGuild(state, data, parts), nonce, chunks: new Set() });
    out.push({ kind: "request-members", guildId: data.id, nonce });
  } else {
    state.syncs.delete(data.id);
  }
  out.push({
    kind: "log",
    level: "info",
    message: `guild "${fresh.name}" (${data.id}): ${members.ok.length}/${fresh.memberCount} ` +
      `members, ${fresh.presences.size} not offline${
        needChunks ? "; requesting the member list" : ""
      }`,
  });
  out.push({ kind: "guild-arrived", guildId: data.id });
}

function onMembersChunk(state: SourceState, d: unknown, out: Output[]): void {
  const p = membersChunkSchema.safeParse(d);
  if (!p.success) return bad("GUILD_MEMBERS_CHUNK", p.error, out);
  const sync = state.syncs.get(p.data.guild_id);
  if (!sync || p.data.nonce !== sync.nonce) {
    out.push({
      kind: "log",
      level: "debug",
      message: `ignored a member chunk for ${p.data.guild_id} of an earlier request`,
    });
    return;
  }
  const g = sync.shadow;
  for (const m of parseEach(memberSchema, p.data.members).ok) g.upsertMember(memberRecord(m));
  for (const pr of parseEach(presenceSchema, p.data.presences).ok) {
    g.setStatus(pr.user.id, toStatus(pr.status));
  }
  sync.chunks.add(p.data.chunk_index);
  if (sync.chunks.size < p.data.chunk_count) return;
  const id = p.data.guild_id;
  const live = state.guilds.get(id);
  state.syncs.delete(id);
  if (!live) return;
  g.name = live.name;
  g.memberCount = Math.max(g.memberCount, g.members.size);
  emitChanges(id, diffSnapshots(live.snapshot(), g.snapshot()), out);
  state.guilds.set(id, g);
  out.push({
    kind: "log",
    level: "info",
    message: `guild "${g.name}" (${id}): member list complete, ${g.members.size} members`,
  });
  out.push({ kind: "members-complete", guildId: id });
}

function onRateLimited(state: SourceState, d: unknown, out: Output[]): void {
  const p = rateLimitedSchema.safeParse(d);
  if (!p.success) return bad("RATE_LIMITED", p.error, out);
  const guildId = p.data.meta?.guild_id;
  if (p.data.opcode !== REQUEST_GUILD_MEMBERS || !guildId || !state.syncs.has(guildId)) return;
  const afterMs = Math.ceil(p.data.retry_after * 1000) + 100;
  out.push({
    kind: "log",
    level: "warn",
    message: `member request for ${guildId} rate limited; retrying in ${afterMs} ms`,
  });
  out.push({ kind: "retry-members", guildId, afterMs });
}

function onGuildUpdate(state: SourceState, d: unknown, out: Output[]): void {
  const p = guildUpdateSchema.safeParse(d);
  if (!p.success) return bad("GUILD_UPDATE", p.error, out);
  const g = state.guilds.get(p.data.id);
  if (g) g.name = p.data.name;
  const s = state.syncs.get(p.data.id);
  if (s) s.shadow.name = p.data.name;
}

function onGuildDelete(state: SourceState, d: unknown, out: Output[]): void {
  const p = guildDeleteSchema.safeParse(d);
  if (!p.success) return bad("GUILD_DELETE", p.error, out);
  const g = state.guilds.get(p.data.id);
  if (!g) return;
  if (p.data.unavailable === true) {
    out.push({
      kind: "log",
      level: "warn",
      message: `guild ${g.id} is unavailable (Discord outage); keeping its last state`,
    });
    return;
  }
  dropGuild(state, g.id, out);
  out.push({
    kind: "log",
    level: "warn",
    message: `the bot was removed from guild "${g.name}" (${g.id})`,
  });
}

/**
 * Apply `fn` to the live guild (broadcasting how the entries of `uids`, or
 * all when `null`, changed) and silently to a loading shadow.
 */
function touch(
  state: SourceState,
  guildId: string,
  uids: readonly string[] | null,
  fn: (g: GuildState) => void,
  out: Output[],
): GuildState | undefined {
  const live = state.guilds.get(guildId);
  if (!live) return undefined;
  change(live, uids, () => fn(live), out);
  const sync = state.syncs.get(guildId);
  if (sync) fn(sync.shadow);
  return live;
}

function change(
  g: GuildState,
  uids: readonly string[] | null,
  fn: () => void,
  out: Output[],
): void {
  let changes: EntryChange[];
  if (uids === null) {
    const before = g.snapshot();
    fn();
    changes = diffSnapshots(before, g.snapshot());
  } else {
    const unique = [...new Set(uids)];
    const before = new Map<string, Required<UserEntry> | undefined>();
    for (const uid of unique) before.set(uid, g.entry(uid));
    fn();
    changes = [];
    for (const uid of unique) {
      const c = diffEntry(uid, before.get(uid), g.entry(uid));
      if (c) changes.push(c);
    }
  }
  emitChanges(g.id, changes, out);
}

function emitChanges(server: string, changes: EntryChange[], out: Output[]): void {
  for (const c of changes) out.push({ kind: "presence", event: toPresence(server, c) });
}

function onMemberUpsert(state: SourceState, t: string, d: unknown, out: Output[]): void {
  const p = memberEventSchema.safeParse(d);
  if (!p.success) return bad(t, p.error, out);
  const uid = p.data.user.id;
  touch(state, p.data.guild_id, [uid], (g) => {
    if (t === "GUILD_MEMBER_ADD" && !g.members.has(uid)) g.memberCount++;
    g.upsertMember(memberRecord(p.data));
  }, out);
}

function onMemberRemove(state: SourceState, d: unknown, out: Output[]): void {
  const p = memberRemoveSchema.safeParse(d);
  if (!p.success) return bad("GUILD_MEMBER_REMOVE", p.error, out);
  const uid = p.data.user.id;
  const live = touch(state, p.data.guild_id, [uid], (g) => {
    if (g.members.has(uid)) g.memberCount = Math.max(0, g.memberCount - 1);
    g.removeMember(uid);
  }, out);
  if (live) out.push({ kind: "member-left", guildId: p.data.guild_id, userId: uid });
}

function withRole(g: GuildState, roleId: string): string[] {
  const ids: string[] = [];
  for (const m of g.members.values()) if (m.roles.includes(roleId)) ids.push(m.id);
  return ids;
}

function onRoleUpsert(state: SourceState, t: string, d: unknown, out: Output[]): void {
  const p = roleEventSchema.safeParse(d);
  if (!p.success) return bad(t, p.error, out);
  const role = roleSchema.safeParse(p.data.role);
  if (!role.success) return bad(t, role.error, out);
  const live = state.guilds.get(p.data.guild_id);
  if (!live) return;
  touch(state, live.id, withRole(live, role.data.id), (g) => g.upsertRole(role.data), out);
}

function onRoleDelete(state: SourceState, d: unknown, out: Output[]): void {
  const p = roleDeleteSchema.safeParse(d);
  if (!p.success) return bad("GUILD_ROLE_DELETE", p.error, out);
  const live = state.guilds.get(p.data.guild_id);
  if (!live) return;
  const id = p.data.role_id;
  touch(state, live.id, withRole(live, id), (g) => {
    g.roles.delete(id);
    for (const m of g.members.values()) {
      if (m.roles.includes(id)) m.roles = m.roles.filter((r) => r !== id);
    }
  }, out);
}

function onChannel(state: SourceState, t: string, d: unknown, gone: boolean, out: Output[]): void {
  const p = channelSchema.safeParse(d);
  if (!p.success) return bad(t, p.error, out);
  const guildId = p.data.guild_id;
  if (!guildId) return;
  for (const g of [state.guilds.get(guildId), state.syncs.get(guildId)?.shadow]) {
    if (!g) continue;
    if (gone) g.channels.delete(p.data.id);
    else {g.channels.set(p.data.id, {
        name: p.data.name ?? null,
        parentId: p.data.parent_id ?? null,
      });}
  }
}

function onPresence(state: SourceState, d: unknown, out: Output[]): void {
  const p = presenceUpdateSchema.safeParse(d);
  if (!p.success) return bad("PRESENCE_UPDATE", p.error, out);
  const u = p.data.user;
  touch(state, p.data.guild_id, [u.id], (g) => {
    const m = g.members.get(u.id);
    if (m) {
      // A presence may carry changed user fields.
      if (u.username !== undefined) m.username = u.username;
      if (u.global_name !== undefined) m.globalName = u.global_name;
    }
    g.setStatus(u.id, toStatus(p.data.status));
  }, out);
}

/** Whether a channel passes the guild's listen/ignore lists (by id or name, threads by parent too). */
export function channelShown(g: GuildState, s: ResolvedServer, channelId: string): boolean {
  if (!s.listenChannels && !s.ignoreChannels) return true;
  const names: string[] = [channelId];
  const c = g.channels.get(channelId);
  if (c?.name) names.push(c.name);
  if (c?.parentId) {
    names.push(c.parentId);
    const parent = g.channels.get(c.parentId);
    if (parent?.name) names.push(parent.name);
  }
  if (s.listenChannels) return names.some((n) => s.listenChannels!.has(n));
  return !names.some((n) => s.ignoreChannels!.has(n));
}

function onMessage(state: SourceState, d: unknown, out: Output[]): void {
  const p = messageCreateSchema.safeParse(d);
  if (!p.success) return bad("MESSAGE_CREATE", p.error, out);
  const msg = p.data;
  if (!msg.guild_id) return; // a DM
  const g = state.guilds.get(msg.guild_id);
  if (!g) return;
  if (msg.author.bot === true || msg.webhook_id !== undefined) return;
  const text = msg.content.trim();
  if (text === "") return;
  const cmd = state.config.infoCommand;
  if (cmd !== undefined && text.toLowerCase() === cmd.toLowerCase()) {
    out.push({ kind: "info-command", guildId: g.id, channelId: msg.channel_id });
  }
  const s = state.config.settings(g.id);
  if (s.ignoreUsers.has(msg.author.id) || s.ignoreUsers.has(msg.author.username)) return;
  if (!channelShown(g, s, msg.channel_id)) return;
  const uid = msg.author.id;
  if (!g.members.has(uid) && msg.member) {
    // Not known yet (large guild still loading): the message tells us enough to show them.
    const member = msg.member;
    const rec = { user: msg.author, nick: member.nick, roles: member.roles };
    touch(state, g.id, [uid], (x) => {
      if (!x.members.has(uid)) x.upsertMember(memberRecord(rec));
    }, out);
  }
  out.push({
    kind: "message",
    event: { server: g.id, uid, message: msg.content, channel: msg.channel_id },
  });
}

/** The presence event for one change. */
function toPresence(server: string, c: EntryChange): PresenceEvent {
  switch (c.kind) {
    case "remove":
      return { server, uid: c.uid, status: "offline", delete: true };
    case "update":
      if (c.statusOnly) return { server, uid: c.entry.uid, status: c.entry.status };
      // falls through: a new name or colour is sent in full
    case "add":
      return {
        server,
        uid: c.entry.uid,
        status: c.entry.status,
        username: c.entry.username,
        roleColor: c.entry.roleColor,
      };
  }
}
