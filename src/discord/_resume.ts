/**
 * Taking over a running gateway session (scale-out failover): the served
 * guilds come from a snapshot the caller keeps (what viewers last saw), the
 * session from a {@link GatewaySessionStore}. A RESUME replays the missed
 * dispatches on top of the snapshot; afterwards each guild is rebuilt in the
 * background (its roles and channels by REST, its members by op 8) so role
 * colours and name filters work again, and the rebuilt list replaces the
 * snapshot with only real differences broadcast.
 *
 * @module
 */
import { z } from "zod";
import type { UserMap } from "../protocol.ts";
import { parseOrThrow } from "../_zod.ts";
import type { GatewaySessionStore } from "./_gateway_types.ts";
import { channelSchema, type Output, type SourceState } from "./_reducer_types.ts";
import type { RestLimiter } from "./_rest_limiter.ts";
import { parseEach, roleSchema, snowflake } from "./_schemas.ts";
import { GuildState } from "./_state.ts";

/** A served guild as viewers last saw it. */
export interface GuildSnapshot {
  /** Guild id. */
  id: string;
  /** Guild name (the server list's name is fine: GUILD_UPDATE corrects it). */
  name: string;
  /** The user map viewers see. Absent: not kept; the guild is rebuilt from Discord. */
  users?: UserMap;
}

/**
 * What a {@link DiscordGatewaySource} needs to take over another process's
 * gateway session instead of identifying afresh.
 *
 * At start the source asks `guilds()` once. With a snapshot, each shard
 * loads its stored session from `sessions` and RESUMEs it (Discord replays
 * what was missed); without one (`undefined`, a throw, or no stored
 * session) it identifies, and the guild state comes from Discord as usual —
 * a snapshot still given is then the base the new state is compared with,
 * so viewers get only the differences. While running, the source keeps its
 * session saved in `sessions`.
 */
export interface DiscordResume {
  /** Where each shard's session is kept. */
  sessions: GatewaySessionStore;
  /** The served guilds as viewers last saw them, or `undefined` when there is no snapshot. */
  guilds(): Promise<GuildSnapshot[] | undefined>;
}

const snapshotSchema = z.array(z.object({
  id: snowflake,
  name: z.string(),
  users: z.record(
    z.string(),
    z.object({
      uid: z.string().optional(),
      username: z.string(),
      status: z.enum(["online", "idle", "dnd", "offline"]),
      roleColor: z.string().optional(),
    }),
  ).optional(),
}));

/** A `TypeError` unless `resume` is absent or has `sessions.load`, `sessions.save` and `guilds`. */
export function checkResume(resume: DiscordResume | undefined): void {
  if (resume === undefined) return;
  const r = resume as Partial<DiscordResume> | null;
  if (
    typeof r?.guilds !== "function" || typeof r.sessions?.load !== "function" ||
    typeof r.sessions.save !== "function"
  ) {
    throw new TypeError(
      "Invalid DiscordGatewaySource options: resume: expected { sessions: { load, save }, guilds }",
    );
  }
}

/** Check a snapshot from the caller; a `TypeError` naming the field when it is not one. */
export function parseSnapshot(value: unknown): GuildSnapshot[] {
  return parseOrThrow(snapshotSchema, value, "invalid guild snapshot");
}

/**
 * A guild as a snapshot shows it: members with the name and colour viewers
 * saw (their roles are not known until the rebuild), statuses as shown.
 *
 * @example
 * ```ts
 * import { guildFromSnapshot } from "./_resume.ts";
 * const g = guildFromSnapshot(
 *   { id: "1", name: "G", users: { "7": { username: "Ada", status: "idle", roleColor: "#ff0000" } } },
 *   { includeOffline: true, ignoreUsers: new Set() },
 * );
 * const e = g.entry("7");
 * if (e?.username !== "Ada" || e.roleColor !== "#ff0000" || e.status !== "idle") throw new Error();
 * ```
 */
export function guildFromSnapshot(
  s: GuildSnapshot,
  settings: { includeOffline: boolean; ignoreUsers: ReadonlySet<string> },
): GuildState {
  const g = new GuildState(s.id, s.name, settings.includeOffline, settings.ignoreUsers);
  for (const [uid, u] of Object.entries(s.users ?? {})) {
    g.upsertMember({
      id: uid,
      username: u.username,
      globalName: null,
      nick: null,
      bot: false,
      roles: [],
      color: u.roleColor ?? "#ffffff",
    });
    g.setStatus(uid, u.status);
  }
  g.memberCount = g.members.size;
  return g;
}

/**
 * Rebuild a guild held from a snapshot: its roles (and, when `channels`, its
 * channels and active threads) by REST into the live guild and a fresh
 * shadow, then a member request whose complete answer replaces the
 * snapshot. Returns the outputs to carry out (the request, log lines).
 */
export async function rebuildGuild(
  state: SourceState,
  guildId: string,
  rest: RestLimiter,
  channels: boolean,
): Promise<Output[]> {
  const roles = await rest.request("GET", `/guilds/${guildId}/roles`);
  const live = state.guilds.get(guildId);
  if (!live) return [];
  if (!roles.ok) {
    return [{
      kind: "log",
      level: "warn",
      message: `guild ${guildId}: cannot read its roles after resuming (${roles.reason}); ` +
        "keeping the snapshot (colours stay as they were shown)",
    }];
  }
  const shadow = new GuildState(guildId, live.name, live.includeOffline, live.ignoreUsers);
  for (const r of parseEach(roleSchema, Array.isArray(roles.body) ? roles.body : []).ok) {
    live.upsertRole(r);
    shadow.upsertRole(r);
  }
  if (channels) {
    const [chans, threads] = await Promise.all([
      rest.request("GET", `/guilds/${guildId}/channels`),
      rest.request("GET", `/guilds/${guildId}/threads/active`),
    ]);
    const threadList = threads.ok && typeof threads.body === "object" && threads.body !== null
      ? (threads.body as { threads?: unknown }).threads
      : undefined;
    const list = [chans.ok ? chans.body : [], threadList ?? []].flatMap((x) =>
      Array.isArray(x) ? x : []
    );
    for (const c of parseEach(channelSchema, list).ok) {
      const rec = { name: c.name ?? null, parentId: c.parent_id ?? null };
      live.channels.set(c.id, rec);
      shadow.channels.set(c.id, rec);
    }
  }
  if (state.guilds.get(guildId) !== live) return []; // replaced meanwhile (a GUILD_CREATE)
  shadow.memberCount = live.memberCount;
  const nonce = state.nextNonce();
  state.syncs.set(guildId, { shadow, nonce, chunks: new Set() });
  return [
    {
      kind: "log",
      level: "info",
      message: `guild ${guildId}: rebuilding the member list after resuming`,
    },
    { kind: "request-members", guildId, nonce },
  ];
}
