/**
 * In-memory state of one Discord guild, as far as d-zone needs it: members,
 * their presence status and the roles that colour them. Pure data, no I/O:
 * the reducer (`_reducer.ts`) feeds it dispatches and turns the differences
 * of {@link GuildState.entry} before and after into presence broadcasts.
 *
 * @module
 */
import type { Status, UserEntry, UserMap } from "../protocol.ts";
import type { RawMember, RawRole } from "./_schemas.ts";

/** What is kept of a member. */
export interface MemberRecord {
  /** User id. */
  id: string;
  /** Account username. */
  username: string;
  /** Global display name, when set. */
  globalName: string | null;
  /** Guild nickname, when set. */
  nick: string | null;
  /** Whether the account is a bot. */
  bot: boolean;
  /** Role ids. */
  roles: string[];
  /** The `#rrggbb` a snapshot showed, used until the member's roles are known (a resumed session). */
  color?: string;
}

/** What is kept of a role. */
export interface RoleRecord {
  /** Role id. */
  id: string;
  /** Colour as a 24-bit integer; 0 means "no colour". */
  color: number;
  /** Position in the role list; higher wins. */
  position: number;
}

/** The colour of a user without any coloured role. */
export const DEFAULT_ROLE_COLOR = "#ffffff";

/** Map a Discord presence status to one d-zone draws; unknown and `invisible` are `offline`. */
export function toStatus(status: string | undefined): Status {
  switch (status) {
    case "online":
    case "idle":
    case "dnd":
      return status;
    default:
      return "offline";
  }
}

/** Format a 24-bit colour as `#rrggbb`. */
export function colorHex(color: number): string {
  return `#${(color & 0xffffff).toString(16).padStart(6, "0")}`;
}

/** Turn a parsed member into the record kept. */
export function memberRecord(m: RawMember): MemberRecord {
  return {
    id: m.user.id,
    username: m.user.username,
    globalName: m.user.global_name ?? null,
    nick: m.nick ?? null,
    bot: m.user.bot === true,
    roles: [...m.roles],
  };
}

/** The name d-zone shows: nickname, else global display name, else username. */
export function displayName(m: MemberRecord): string {
  return m.nick || m.globalName || m.username;
}

// Discord orders roles by position, then (for equal positions) the lower id first.
function higher(a: RoleRecord, b: RoleRecord): boolean {
  if (a.position !== b.position) return a.position > b.position;
  if (a.id.length !== b.id.length) return a.id.length < b.id.length;
  return a.id < b.id;
}

/** What is kept of a channel or thread, for filters by name. */
export interface ChannelRecord {
  /** Channel name, when known. */
  name: string | null;
  /** Parent channel id (threads), when known. */
  parentId: string | null;
}

/** One guild's members, presences, roles and channel names. */
export class GuildState {
  /** Guild id. */
  readonly id: string;
  /** Guild name. */
  name: string;
  /** Member count Discord announced in `GUILD_CREATE`. */
  memberCount = 0;
  /** Members by user id. */
  readonly members: Map<string, MemberRecord> = new Map();
  /** Non-offline statuses by user id; absent means offline. */
  readonly presences: Map<string, Status> = new Map();
  /** Roles by id. */
  readonly roles: Map<string, RoleRecord> = new Map();
  /** Channels and threads by id. */
  readonly channels: Map<string, ChannelRecord> = new Map();
  /** Whether offline members are part of the user map. */
  readonly includeOffline: boolean;
  /** User ids or usernames never shown. */
  readonly ignoreUsers: ReadonlySet<string>;

  /** An empty guild. */
  constructor(
    id: string,
    name: string,
    includeOffline: boolean,
    ignoreUsers: ReadonlySet<string> = new Set(),
  ) {
    this.id = id;
    this.name = name;
    this.includeOffline = includeOffline;
    this.ignoreUsers = ignoreUsers;
  }

  /** Whether a member is hidden by `ignoreUsers` (by id or username). */
  ignored(m: MemberRecord): boolean {
    return this.ignoreUsers.size > 0 &&
      (this.ignoreUsers.has(m.id) || this.ignoreUsers.has(m.username));
  }

  /** The `#rrggbb` colour of the member's highest coloured role, `#ffffff` when none. */
  colorOf(m: MemberRecord): string {
    if (m.color !== undefined) return m.color;
    let best: RoleRecord | undefined;
    for (const id of m.roles) {
      const r = this.roles.get(id);
      if (!r || r.color === 0) continue;
      if (!best || higher(r, best)) best = r;
    }
    return best ? colorHex(best.color) : DEFAULT_ROLE_COLOR;
  }

  /** A member's status; offline when no presence is known. */
  statusOf(uid: string): Status {
    return this.presences.get(uid) ?? "offline";
  }

  /** The user entry d-zone sees for `uid`, or `undefined` when the user is not shown. */
  entry(uid: string): Required<UserEntry> | undefined {
    const m = this.members.get(uid);
    if (!m || this.ignored(m)) return undefined;
    const status = this.statusOf(uid);
    if (status === "offline" && !this.includeOffline) return undefined;
    return { uid, username: displayName(m), status, roleColor: this.colorOf(m) };
  }

  /** The whole user map d-zone sees. */
  userMap(): UserMap {
    const out: UserMap = {};
    for (const uid of this.members.keys()) {
      const e = this.entry(uid);
      if (e) out[uid] = e;
    }
    return out;
  }

  /** Every shown entry, keyed by uid (for before/after comparisons). */
  snapshot(): Map<string, Required<UserEntry>> {
    const out = new Map<string, Required<UserEntry>>();
    for (const uid of this.members.keys()) {
      const e = this.entry(uid);
      if (e) out.set(uid, e);
    }
    return out;
  }

  /** Add or replace a member. */
  upsertMember(m: MemberRecord): void {
    this.members.set(m.id, m);
  }

  /** Forget a member and its presence. */
  removeMember(uid: string): void {
    this.members.delete(uid);
    this.presences.delete(uid);
  }

  /** Record a presence status (offline removes it). */
  setStatus(uid: string, status: Status): void {
    if (status === "offline") this.presences.delete(uid);
    else this.presences.set(uid, status);
  }

  /** Add or replace a role. */
  upsertRole(r: RawRole): void {
    this.roles.set(r.id, { id: r.id, color: r.color, position: r.position });
  }
}

/** A change of one user's entry, ready to become a `presence` frame. */
export type EntryChange =
  | { kind: "add"; entry: Required<UserEntry> }
  | { kind: "update"; entry: Required<UserEntry>; statusOnly: boolean }
  | { kind: "remove"; uid: string };

/** Compare one user's entry before and after. */
export function diffEntry(
  uid: string,
  before: Required<UserEntry> | undefined,
  after: Required<UserEntry> | undefined,
): EntryChange | undefined {
  if (!before && !after) return undefined;
  if (!after) return { kind: "remove", uid };
  if (!before) return { kind: "add", entry: after };
  const sameLook = before.username === after.username && before.roleColor === after.roleColor;
  if (sameLook && before.status === after.status) return undefined;
  return { kind: "update", entry: after, statusOnly: sameLook };
}

/** Compare two snapshots; every difference, in a stable order. */
export function diffSnapshots(
  before: Map<string, Required<UserEntry>>,
  after: Map<string, Required<UserEntry>>,
): EntryChange[] {
  const out: EntryChange[] = [];
  for (const [uid, a] of after) {
    const c = diffEntry(uid, before.get(uid), a);
    if (c) out.push(c);
  }
  for (const uid of before.keys()) {
    if (!after.has(uid)) out.push({ kind: "remove", uid });
  }
  return out;
}
