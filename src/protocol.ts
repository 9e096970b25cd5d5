/**
 * The d-back wire protocol: the shapes of server and user entries, the client
 * frames the server accepts, the exact error texts the d-zone client shows, and
 * builders for every server-to-client frame.
 *
 * Everything that crosses the boundary (client frames, callback results) is
 * parsed here with zod; the rest of the server trusts the parsed types.
 *
 * @module
 */
import { z } from "zod";

/**
 * A Discord presence status, as the d-zone client draws it.
 *
 * @example
 * ```ts
 * import type { Status } from "@dzone/dback";
 * const all: Status[] = ["online", "idle", "dnd", "offline"];
 * if (all.length !== 4) throw new Error("unexpected");
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
 * import type { ServerEntry } from "@dzone/dback";
 * const entry: ServerEntry = { id: "dworld", name: "D-World", default: true, passworded: false };
 * if (entry.passworded) throw new Error("unexpected");
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
 * import type { ServerMap } from "@dzone/dback";
 * const map: ServerMap = { "232769614004748288": { id: "dworld", name: "D-World", default: true } };
 * if (map["232769614004748288"].id !== "dworld") throw new Error("unexpected");
 * ```
 */
export type ServerMap = Record<string, ServerEntry>;

/**
 * A user entry (value of the user map, keyed by user id).
 *
 * @example
 * ```ts
 * import type { UserEntry } from "@dzone/dback";
 * const u: UserEntry = { uid: "42", username: "vegeta897", status: "online", roleColor: "#ff6b6b" };
 * if (u.status !== "online") throw new Error("unexpected");
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
 * import type { UserMap } from "@dzone/dback";
 * const users: UserMap = { "42": { username: "ada", status: "idle" } };
 * if (users["42"].status !== "idle") throw new Error("unexpected");
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

const snowflakeish = z.string().min(1).max(64);
const colorSchema = z.string().regex(/^#[0-9a-fA-F]{6}$/, "roleColor must be #rrggbb");
const statusSchema = z.enum(["online", "idle", "dnd", "offline"]);

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
  return parseLenient(lenientServerMapSchema, value, "server map");
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
  return parseLenient(lenientUserMapSchema, value, "user map");
}

function parseLenient<T>(
  schema: z.ZodType<LenientMap<T>>,
  value: unknown,
  what: string,
): LenientMap<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new TypeError(`${what}: ${describeZodError(r.error)}`);
  return r.data;
}

/**
 * The `/users/@me` object the client sends when logging in with Discord.
 *
 * @example
 * ```ts
 * import type { DiscordUser } from "@dzone/dback";
 * const user: DiscordUser = { id: "80351110224678912", username: "nelly" };
 * if (!/^\d+$/.test(user.id)) throw new Error("unexpected");
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

// Only what the login check uses is kept: extra fields a client sends are dropped at the edge.
const discordUserSchema = z.object({
  id: z.string().min(1).max(64),
  username: z.string().min(1).max(200),
});

/** A `connect` request after parsing and normalisation. */
export interface ConnectRequest {
  /** Requested short id, trimmed; `"default"` when missing or blank. */
  server: string;
  /** OAuth2 access token, when given and well-formed. */
  discordToken?: string;
  /** The claimed Discord user, when given and well-formed. */
  discordUser?: DiscordUser;
  /** Legacy password, when given. */
  password?: string;
}

/** Result of parsing one client frame. */
export type ParsedFrame =
  | { ok: true; request: ConnectRequest }
  | { ok: false; error: string };

const envelopeSchema = z.object({ type: z.unknown(), data: z.unknown().optional() });
const serverFieldSchema = z.union([z.string(), z.number(), z.null(), z.undefined()]);
const tokenSchema = z.string().min(1).max(4096);
const passwordSchema = z.string().max(4096);

/**
 * Parse a decoded text frame into a `connect` request or one of the
 * protocol's error texts. Never throws.
 *
 * @example
 * ```ts
 * import { parseClientFrame } from "./protocol.ts";
 * const parsed = parseClientFrame('{"type":"connect","data":{"server":" dworld "}}');
 * if (!parsed.ok || parsed.request.server !== "dworld") throw new Error("unexpected");
 * ```
 */
export function parseClientFrame(text: string): ParsedFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: ERRORS.invalidJson };
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success || envelope.data.type !== "connect") {
    return { ok: false, error: ERRORS.unknownType };
  }
  const data = envelope.data.data;
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, error: ERRORS.invalidConnect };
  }
  const fields = data as Record<string, unknown>;
  const server = serverFieldSchema.safeParse(fields.server);
  if (!server.success) return { ok: false, error: ERRORS.invalidServer };
  const raw = server.data == null ? "" : String(server.data).trim();
  const request: ConnectRequest = { server: raw === "" ? "default" : raw };
  const token = tokenSchema.safeParse(fields.discordToken);
  if (token.success) request.discordToken = token.data;
  const user = discordUserSchema.safeParse(fields.discordUser);
  if (user.success) request.discordUser = user.data as DiscordUser;
  const password = passwordSchema.safeParse(fields.password);
  if (password.success) request.password = password.data;
  return { ok: true, request };
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

/** Serialise a user map for the wire: every entry gets its `uid`, `roleColor` defaults to white. */
export function serialiseUsers(map: UserMap): string {
  const out: Record<string, { uid: string; username: string; status: Status; roleColor: string }> =
    {};
  for (const [key, u] of Object.entries(map)) {
    out[key] = {
      uid: u.uid ?? key,
      username: u.username,
      status: u.status,
      roleColor: u.roleColor ?? "#ffffff",
    };
  }
  return JSON.stringify(out);
}

/** The `server-list` frame. */
export function serverListFrame(servers: readonly ServerInfo[]): string {
  const data: Record<string, PublicServerEntry> = {};
  for (const s of servers) {
    data[s.discordId] = { id: s.id, name: s.name, default: s.default, passworded: s.passworded };
  }
  return JSON.stringify({ type: "server-list", data });
}

/** The `server-join` frame, built around an already serialised user map. */
export function serverJoinFrame(
  usersJson: string,
  requested: string,
  serverName: string,
  clientId: string | undefined,
): string {
  return `{"type":"server-join","data":{"users":${usersJson},"request":${
    JSON.stringify({ server: requested })
  },"serverName":${JSON.stringify(serverName)}${
    clientId === undefined ? "" : `,"clientId":${JSON.stringify(clientId)}`
  }}}`;
}

/** An `error` frame carrying one of {@link ERRORS} (or another human-readable text). */
export function errorFrame(message: string): string {
  return JSON.stringify({ type: "error", data: { message } });
}

/**
 * A chat message to show in a bubble.
 *
 * @example
 * ```ts
 * import type { ChatEvent } from "@dzone/dback";
 * const e: ChatEvent = { server: "1", uid: "42", message: "hello", channel: "9" };
 * if (e.message !== "hello") throw new Error("unexpected");
 * ```
 */
export interface ChatEvent {
  /** Discord id of the server. */
  server: string;
  /** The speaking user's id. */
  uid: string;
  /** The text. */
  message: string;
  /** Discord channel id. */
  channel: string;
}

/**
 * A presence change, a new user (with `username`) or a removal (`delete: true`).
 *
 * @example
 * ```ts
 * import type { PresenceEvent } from "@dzone/dback";
 * const gone: PresenceEvent = { server: "1", uid: "42", status: "offline", delete: true };
 * if (!gone.delete) throw new Error("unexpected");
 * ```
 */
export interface PresenceEvent {
  /** Discord id of the server. */
  server: string;
  /** The user's id. */
  uid: string;
  /** New status. */
  status: Status;
  /** Display name; needed when the user is new to the client. */
  username?: string;
  /** `#rrggbb`. */
  roleColor?: string;
  /** `true` removes the user's actor. */
  delete?: boolean;
}

/**
 * A change of the OAuth2 application id for a server.
 *
 * @example
 * ```ts
 * import type { ClientIdEvent } from "@dzone/dback";
 * const e: ClientIdEvent = { server: "1", clientId: "1234567890" };
 * if (e.clientId.length !== 10) throw new Error("unexpected");
 * ```
 */
export interface ClientIdEvent {
  /** Discord id of the server. */
  server: string;
  /** The OAuth2 client id. */
  clientId: string;
}

/** Schema for {@link ChatEvent}; broadcast input is checked before it is sent. */
export const messageEventSchema: z.ZodType<ChatEvent> = z.object({
  server: snowflakeish,
  uid: snowflakeish,
  message: z.string(),
  channel: z.string(),
});

/** Schema for {@link PresenceEvent}. */
export const presenceEventSchema: z.ZodType<PresenceEvent> = z.object({
  server: snowflakeish,
  uid: snowflakeish,
  status: statusSchema,
  username: z.string().optional(),
  roleColor: colorSchema.optional(),
  delete: z.boolean().optional(),
});

/** Schema for {@link ClientIdEvent}. */
export const clientIdEventSchema: z.ZodType<ClientIdEvent> = z.object({
  server: snowflakeish,
  clientId: z.string().min(1),
});

/** The `message` frame. */
export function messageFrame(e: ChatEvent): string {
  return JSON.stringify({
    type: "message",
    server: e.server,
    data: { uid: e.uid, message: e.message, channel: e.channel },
  });
}

/** The `presence` frame; optional fields appear only when given. */
export function presenceFrame(e: PresenceEvent): string {
  const data: Record<string, unknown> = { uid: e.uid, status: e.status };
  if (e.username !== undefined) data.username = e.username;
  if (e.roleColor !== undefined) data.roleColor = e.roleColor;
  if (e.delete) data.delete = true;
  return JSON.stringify({ type: "presence", server: e.server, data });
}

/** The `update-clientid` frame. */
export function clientIdFrame(e: ClientIdEvent): string {
  return JSON.stringify({
    type: "update-clientid",
    server: e.server,
    data: { clientId: e.clientId },
  });
}

/** Format a zod error as one short line for logs and exceptions. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((i) =>
    `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`
  ).join("; ");
}
