/**
 * The d-back wire protocol's shapes and texts: server and user entries (and
 * their zod schemas, read leniently entry by entry), the claimed Discord
 * user, and the exact error texts the d-zone client shows. The frames are
 * built in `_frames.ts` and `events.ts`; client frames are parsed in
 * `_client_frames.ts`.
 *
 * @module
 */
import { z } from "zod";
import { describeZodError, parseOrThrow } from "./_zod.ts";

/**
 * A Discord presence status, as the d-zone client draws it.
 *
 * @example
 * ```ts
 * import { MockSource, type Status } from "@dzone/dback";
 * const users = Object.values(new MockSource().getUserData("987654321098765432"));
 * const seen = new Set<Status>(users.map((u) => u.status));
 * if ([...seen].sort().join() !== "dnd,idle,offline,online") throw new Error([...seen].join());
 * ```
 */
export type Status = "online" | "idle" | "dnd" | "offline";

/** The statuses a user may have, in the order the client knows them. */
export const STATUSES: readonly Status[] = ["online", "idle", "dnd", "offline"];

/**
 * A server entry as a data callback may return it (value of the server map,
 * keyed by Discord id).
 *
 * @example
 * ```ts
 * import { MockSource, type ServerEntry } from "@dzone/dback";
 * const oauth: ServerEntry = new MockSource().getServerData()["123456789012345678"];
 * if (oauth.id !== "oauth" || oauth.passworded !== true || oauth.default) throw new Error(oauth.id);
 * ```
 */
export interface ServerEntry {
  /** Short id the client joins by, e.g. `"dworld"`. */
  id: string;
  /** Name shown to the person. */
  name: string;
  /** Marks the server joined when the client asks for `default`. */
  default?: boolean;
  /** Legacy spelling of `default`. */
  is_default?: boolean;
  /** Joining needs Discord OAuth2 (or the legacy password). */
  passworded?: boolean;
  /** `false` hides the server and makes it impossible to join. */
  enabled?: boolean;
  /** Legacy shared secret. Never sent to clients, never logged. */
  password?: string;
}

/**
 * The server map: Discord id → server entry.
 *
 * @example
 * ```ts
 * import { MockSource, type ServerMap } from "@dzone/dback";
 * const map: ServerMap = new MockSource().getServerData();
 * const defaults = Object.entries(map).filter(([, s]) => s.default).map(([id]) => id);
 * if (defaults.join() !== "232769614004748288") throw new Error(defaults.join());
 * ```
 */
export type ServerMap = Record<string, ServerEntry>;

/**
 * A user entry (value of the user map, keyed by user id).
 *
 * @example
 * ```ts
 * import { MockSource, type UserEntry } from "@dzone/dback";
 * const u: UserEntry = new MockSource().getUserData("232769614004748288")["123456789012345001"];
 * if (u.username !== "vegeta897" || u.roleColor !== "#ff6b6b") throw new Error(u.username);
 * ```
 */
export interface UserEntry {
  /** The user's Discord id. When missing, the map key is used. */
  uid?: string;
  /** Display name. */
  username: string;
  /** Presence status. */
  status: Status;
  /** `#rrggbb`; `#ffffff` when missing. */
  roleColor?: string;
}

/**
 * The user map: user id → user entry.
 *
 * @example
 * ```ts
 * import { MockSource, type UserMap } from "@dzone/dback";
 * const users: UserMap = new MockSource().getUserData("482241773318701056");
 * if (Object.keys(users).join() !== "223456789012345001") throw new Error("keyed by user id");
 * ```
 */
export type UserMap = Record<string, UserEntry>;

/** A server entry as it is sent to clients: no password, no legacy fields. */
export interface PublicServerEntry {
  /** Short id. */
  id: string;
  /** Display name. */
  name: string;
  /** Whether this is the default server. */
  default: boolean;
  /** Whether joining needs authentication. */
  passworded: boolean;
}

/** A normalised server entry the server works with internally. */
export interface ServerInfo extends PublicServerEntry {
  /** The Discord id (key of the server map). */
  discordId: string;
  /** Legacy shared secret, when configured. */
  password?: string;
}

/**
 * The error texts of the protocol, to the letter.
 *
 * @example
 * ```ts
 * import { ERRORS } from "@dzone/dback";
 * if (ERRORS.invalidJson !== "Invalid JSON") throw new Error("unexpected");
 * ```
 */
export const ERRORS = {
  invalidJson: "Invalid JSON",
  unknownType: "Unknown event type",
  invalidBinary: "Invalid binary encoding",
  noSuchServer: "Sorry, couldn't connect to that Discord server.",
  authFailed: "Discord authentication failed. Please try logging in again.",
  authRequired: "This server requires Discord authentication. Please login with Discord.",
  // Not in the reference: texts for the failures it did not survive.
  invalidConnect: 'Invalid connect request: "data" must be an object.',
  invalidServer: 'Invalid connect request: "server" must be a string or a number.',
  serverUnavailable: "Sorry, that Discord server is unavailable right now. Please try again.",
  serverListUnavailable: "Sorry, the server list is unavailable right now. Please try again.",
  rateLimited: "Too many messages. Slow down.",
  tooLarge: "Message too large.",
  busy: "The server is busy. Please try again in a moment.",
} as const;

/** A Discord id (or a key standing in for one): 1 to 64 characters. */
export const snowflakeish: z.ZodString = z.string().min(1).max(64);
/** A `#rrggbb` colour. */
export const colorSchema: z.ZodString = z.string().regex(
  /^#[0-9a-fA-F]{6}$/,
  "roleColor must be #rrggbb",
);
/** A presence status. */
export const statusSchema: z.ZodType<Status> = z.enum(["online", "idle", "dnd", "offline"]);

/** Schema of a server entry returned by `getServerData`. Unknown fields are dropped. */
export const serverEntrySchema: z.ZodType<ServerEntry> = z.object({
  id: z.string().min(1).max(200),
  name: z.string().max(500),
  default: z.boolean().optional(),
  is_default: z.boolean().optional(),
  passworded: z.boolean().optional(),
  enabled: z.boolean().optional(),
  password: z.string().optional(),
});

/** Schema of the whole server map. */
export const serverMapSchema: z.ZodType<ServerMap> = z.record(snowflakeish, serverEntrySchema);

/** Schema of one user entry returned by `getUserData`. */
export const userEntrySchema: z.ZodType<UserEntry> = z.object({
  uid: snowflakeish.optional(),
  username: z.string().max(500),
  status: statusSchema,
  roleColor: colorSchema.optional(),
});

/** Schema of the whole user map. */
export const userMapSchema: z.ZodType<UserMap> = z.record(snowflakeish, userEntrySchema);

/**
 * A map read leniently: the entries that passed their schema, and one line
 * per entry that did not (its key, quoted, and the reason).
 */
export interface LenientMap<T> {
  /** The valid entries, keyed as they came. */
  map: Record<string, T>;
  /** One `"key": reason` line per dropped entry, in input order. */
  skipped: string[];
}

const objectOfEntries = z.custom<Record<string, unknown>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  "expected an object of entries keyed by id",
);

/** Quote a key for a log line: bounded, with control and C1 characters escaped. */
function quoteKey(key: string): string {
  const short = key.length > 64 ? key.slice(0, 64) + "…" : key;
  return JSON.stringify(short).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function lenient<T>(entry: z.ZodType<T>): z.ZodType<LenientMap<T>> {
  return objectOfEntries.transform((value) => {
    const map: Record<string, T> = {};
    const skipped: string[] = [];
    for (const [key, raw] of Object.entries(value)) {
      const id = snowflakeish.safeParse(key);
      if (!id.success) {
        skipped.push(`${quoteKey(key)}: key must be 1 to 64 characters`);
        continue;
      }
      const parsed = entry.safeParse(raw);
      if (!parsed.success) {
        skipped.push(`${quoteKey(key)}: ${describeZodError(parsed.error)}`);
        continue;
      }
      // defineProperty: a key such as `__proto__` stays a plain entry.
      Object.defineProperty(map, key, {
        value: parsed.data,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return { map, skipped };
  });
}

/**
 * Schema of a server map read entry by entry: a value that is not an object
 * fails, while each malformed entry is dropped and named in `skipped`, so one
 * bad entry no longer hides the whole list.
 */
export const lenientServerMapSchema: z.ZodType<LenientMap<ServerEntry>> = lenient(
  serverEntrySchema,
);

/** Schema of a user map read entry by entry; see {@link lenientServerMapSchema}. */
export const lenientUserMapSchema: z.ZodType<LenientMap<UserEntry>> = lenient(userEntrySchema);

/**
 * Read a server map, dropping the malformed entries instead of failing the
 * whole map. Throws a `TypeError` only when `value` is not an object at all.
 *
 * @example
 * ```ts
 * import { parseServerMap } from "./protocol.ts";
 * const { map, skipped } = parseServerMap({
 *   "1": { id: "good", name: "Good" },
 *   "2": { id: "", name: "Bad" },
 * });
 * if (Object.keys(map).join() !== "1") throw new Error("only the good entry stays");
 * if (skipped.length !== 1 || !skipped[0].startsWith('"2": id:')) throw new Error(skipped[0]);
 * ```
 */
export function parseServerMap(value: unknown): LenientMap<ServerEntry> {
  return parseOrThrow(lenientServerMapSchema, value, "server map");
}

/**
 * Read a user map, dropping the malformed entries instead of failing the
 * whole map. Throws a `TypeError` only when `value` is not an object at all.
 *
 * @example
 * ```ts
 * import { parseUserMap } from "./protocol.ts";
 * const { map, skipped } = parseUserMap({
 *   "42": { username: "ada", status: "online" },
 *   "43": { username: "bob", status: "asleep" },
 * });
 * if (Object.keys(map).join() !== "42") throw new Error("only ada stays");
 * if (!skipped[0].startsWith('"43": status:')) throw new Error(skipped[0]);
 * ```
 */
export function parseUserMap(value: unknown): LenientMap<UserEntry> {
  return parseOrThrow(lenientUserMapSchema, value, "user map");
}

/**
 * The `/users/@me` object the client sends when logging in with Discord.
 *
 * @example
 * ```ts
 * import type { DiscordUser } from "@dzone/dback";
 * import { parseClientFrame } from "./_client_frames.ts";
 * const user: DiscordUser = { id: "80351110224678912", username: "nelly", avatar: "a1b2" };
 * const parsed = parseClientFrame(JSON.stringify({
 *   type: "connect",
 *   data: { server: "oauth", discordToken: "t", discordUser: user },
 * }));
 * if (!parsed.ok || JSON.stringify(parsed.request.discordUser) !== '{"id":"80351110224678912","username":"nelly"}') {
 *   throw new Error("only id and username reach the hooks");
 * }
 * ```
 */
export interface DiscordUser {
  /** Discord user id. */
  id: string;
  /** Discord username. */
  username: string;
  /** Other fields are dropped at the edge: hooks see only `id` and `username`. */
  [key: string]: unknown;
}

/**
 * Turn a validated server map into the entries the server works with:
 * disabled ones removed, `is_default` folded into `default`.
 */
export function normaliseServers(map: ServerMap): ServerInfo[] {
  const out: ServerInfo[] = [];
  for (const [discordId, entry] of Object.entries(map)) {
    if (entry.enabled === false) continue;
    const info: ServerInfo = {
      discordId,
      id: entry.id,
      name: entry.name,
      default: entry.default === true || entry.is_default === true,
      passworded: entry.passworded === true,
    };
    if (entry.password !== undefined) info.password = entry.password;
    out.push(info);
  }
  return out;
}

/** Find the entry a request names: by short id, or the default one for `default`. */
export function findServer(
  servers: readonly ServerInfo[],
  requested: string,
): ServerInfo | undefined {
  if (requested === "default") {
    return servers.find((s) => s.default) ?? servers.find((s) => s.id === "default");
  }
  return servers.find((s) => s.id === requested);
}
