// A test data source for big guilds: one Discord server with `members` generated users (about
// 133 bytes each in the `server-join` frame: 100,000 members ≈ 13.3 MB), given to dback through
// its callbacks, and presence traffic for it. Runs on Deno and Bun (no runtime APIs).
import type { Callbacks, PresenceEvent, ServerMap, UserMap } from "../../mod.ts";

/** The big guild's Discord id and short id. */
export const BIG_GUILD = "700000000000000001";
export const BIG_GUILD_SHORT = "big";
/** A small guild next to it (for churn between a big and a small join). */
export const SMALL_GUILD = "700000000000000002";
export const SMALL_GUILD_SHORT = "small";

const STATUSES = ["online", "idle", "dnd", "offline"] as const;

/** The uid of member `i`. */
export function memberUid(i: number): string {
  return String(800000000000000000n + BigInt(i));
}

/** Whether member `i` is offline when `offline` (a share, in twentieths) of the guild is. */
export function isOffline(i: number, offline: number): boolean {
  return i % 20 < Math.round(offline * 20);
}

/**
 * A user map of `members` users: every fourth offline, or, given `offline`
 * (a share such as 0.8, as on real big guilds), that share of them.
 */
export function bigUserMap(members: number, offline?: number): UserMap {
  const users: UserMap = {};
  for (let i = 0; i < members; i++) {
    const uid = memberUid(i);
    users[uid] = {
      uid,
      username: `member ${String(i).padStart(6, "0")} of the big guild`,
      status: offline === undefined
        ? STATUSES[i % 4]
        : isOffline(i, offline)
        ? "offline"
        : STATUSES[i % 3],
      roleColor: `#${(i * 2654435761 % 0xffffff).toString(16).padStart(6, "0")}`,
    };
  }
  return users;
}

/** Callbacks serving the big guild (and a small one) to a `WebSocketServer`. */
export function bigGuildCallbacks(members: number, offline?: number): Callbacks {
  const big = bigUserMap(members, offline);
  const small = bigUserMap(10);
  const servers: ServerMap = {
    [BIG_GUILD]: { id: BIG_GUILD_SHORT, name: "Big Guild", default: true },
    [SMALL_GUILD]: { id: SMALL_GUILD_SHORT, name: "Small Guild" },
  };
  return {
    getServerData: () => servers,
    getUserData: (id) => id === BIG_GUILD ? big : id === SMALL_GUILD ? small : {},
  };
}

/** The `n`-th presence change of the big guild's presence traffic. */
export function presenceEvent(n: number, members: number): PresenceEvent {
  return {
    server: BIG_GUILD,
    uid: memberUid((n * 7919) % members),
    status: STATUSES[n % 4],
  };
}
