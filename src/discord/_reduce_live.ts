/**
 * The live half of the reducer: dispatches that change members, roles,
 * channels and presences of a guild already held, and messages. Each change
 * is applied to the live guild (broadcasting how the touched entries
 * changed) and silently to a member list still loading in a shadow copy.
 *
 * @module
 */
import type { PresenceEvent } from "../events.ts";
import type { UserEntry } from "../protocol.ts";
import type { ResolvedServer } from "./_config.ts";
import {
  memberEventSchema,
  memberRemoveSchema,
  messageCreateSchema,
  presenceUpdateSchema,
  roleDeleteSchema,
  roleEventSchema,
  roleSchema,
} from "./_schemas.ts";
import {
  diffEntry,
  diffSnapshots,
  type EntryChange,
  type GuildState,
  memberRecord,
  toStatus,
} from "./_state.ts";
import { bad, channelSchema, type Output, type SourceState } from "./_reducer_types.ts";

/**
 * Apply `fn` to the live guild (broadcasting how the entries of `uids`, or
 * all when `null`, changed) and silently to a loading shadow.
 */
export function touch(
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

export function emitChanges(server: string, changes: EntryChange[], out: Output[]): void {
  for (const c of changes) out.push({ kind: "presence", event: toPresence(server, c) });
}

export function onMemberUpsert(state: SourceState, t: string, d: unknown, out: Output[]): void {
  const p = memberEventSchema.safeParse(d);
  if (!p.success) return bad(t, p.error, out);
  const uid = p.data.user.id;
  touch(state, p.data.guild_id, [uid], (g) => {
    if (t === "GUILD_MEMBER_ADD" && !g.members.has(uid)) g.memberCount++;
    g.upsertMember(memberRecord(p.data));
  }, out);
}

export function onMemberRemove(state: SourceState, d: unknown, out: Output[]): void {
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

export function onRoleUpsert(state: SourceState, t: string, d: unknown, out: Output[]): void {
  const p = roleEventSchema.safeParse(d);
  if (!p.success) return bad(t, p.error, out);
  const role = roleSchema.safeParse(p.data.role);
  if (!role.success) return bad(t, role.error, out);
  const live = state.guilds.get(p.data.guild_id);
  if (!live) return;
  touch(state, live.id, withRole(live, role.data.id), (g) => g.upsertRole(role.data), out);
}

export function onRoleDelete(state: SourceState, d: unknown, out: Output[]): void {
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

export function onChannel(
  state: SourceState,
  t: string,
  d: unknown,
  gone: boolean,
  out: Output[],
): void {
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

export function onPresence(state: SourceState, d: unknown, out: Output[]): void {
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

export function onMessage(state: SourceState, d: unknown, out: Output[]): void {
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
  // Like the original bot: with offline members hidden, one shown as offline says nothing.
  if (!g.includeOffline && g.statusOf(uid) === "offline") return;
  out.push({
    kind: "message",
    // The id lets a cluster drop this line when Discord replays it to a new publisher.
    event: {
      server: g.id,
      uid,
      message: msg.content,
      channel: msg.channel_id,
      ...(msg.id !== undefined && { id: msg.id }),
    },
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
