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
import type { z } from "zod";
import {
  guildCreateSchema,
  guildDeleteSchema,
  guildUpdateSchema,
  memberSchema,
  membersChunkSchema,
  parseEach,
  presenceSchema,
  rateLimitedSchema,
  readySchema,
  roleSchema,
} from "./_schemas.ts";
import { diffSnapshots, GuildState, memberRecord, toStatus } from "./_state.ts";
import { bad, channelSchema, type Output, type SourceState } from "./_reducer_types.ts";
import {
  emitChanges,
  onChannel,
  onMemberRemove,
  onMemberUpsert,
  onMessage,
  onPresence,
  onRoleDelete,
  onRoleUpsert,
} from "./_reduce_live.ts";

export { channelShown } from "./_reduce_live.ts";
export { type MemberSync, type Output, type ReducerConfig, SourceState } from "./_reducer_types.ts";

/** Op 8 (REQUEST_GUILD_MEMBERS), the only opcode a RATE_LIMITED dispatch names for us. */
const REQUEST_GUILD_MEMBERS = 8;

/**
 * Apply one dispatch to `state`; returns what to broadcast, send and log.
 *
 * @example
 * ```ts
 * import { resolveServer } from "./_config.ts";
 * import { reduce, SourceState } from "./_reducer.ts";
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
