/**
 * Zod schemas for the parts of Discord Gateway v10 payloads this package
 * relies on. Every schema is loose: unknown fields pass through untouched,
 * and only what the data source reads is checked, so a new Discord field
 * never breaks parsing and a malformed payload is rejected before use.
 *
 * @module
 */
import { z } from "zod";

/** A Discord snowflake id (a decimal string). */
export const snowflake: z.ZodString = z.string().regex(/^\d{1,25}$/, "must be a snowflake");

/** Gateway opcodes used by this package. */
export const Op = {
  DISPATCH: 0,
  HEARTBEAT: 1,
  IDENTIFY: 2,
  RESUME: 6,
  RECONNECT: 7,
  REQUEST_GUILD_MEMBERS: 8,
  INVALID_SESSION: 9,
  HELLO: 10,
  HEARTBEAT_ACK: 11,
} as const;

/** Every gateway frame: `{ op, d, s, t }`. */
export const envelopeSchema = z.looseObject({
  op: z.number().int(),
  d: z.unknown().optional(),
  s: z.number().int().nullable().optional(),
  t: z.string().nullable().optional(),
});

/** A parsed gateway frame. */
export type Envelope = z.infer<typeof envelopeSchema>;

/** `HELLO` (op 10) data. */
export const helloSchema = z.looseObject({
  heartbeat_interval: z.number().positive().max(10 * 60 * 1000),
});

/** `READY` data (the parts used). */
export const readySchema = z.looseObject({
  session_id: z.string().min(1),
  resume_gateway_url: z.string().min(1).optional(),
  user: z.looseObject({ id: snowflake, username: z.string() }).optional(),
  guilds: z.array(z.looseObject({ id: snowflake })).optional(),
});

/** A Discord user object (the fields used). */
export const userSchema = z.looseObject({
  id: snowflake,
  username: z.string(),
  global_name: z.string().nullable().optional(),
  bot: z.boolean().optional(),
});

/** A Discord user as it appears in `PRESENCE_UPDATE`: only `id` is sure to be there. */
export const partialUserSchema = z.looseObject({
  id: snowflake,
  username: z.string().optional(),
  global_name: z.string().nullable().optional(),
  bot: z.boolean().optional(),
});

/** A guild member object (the fields used). */
export const memberSchema = z.looseObject({
  user: userSchema,
  nick: z.string().nullable().optional(),
  roles: z.array(snowflake).default([]),
});

/** A parsed guild member. */
export type RawMember = z.infer<typeof memberSchema>;

/** A role object (the fields used). */
export const roleSchema = z.looseObject({
  id: snowflake,
  color: z.number().int().min(0).max(0xffffff).default(0),
  position: z.number().int().default(0),
});

/** A parsed role. */
export type RawRole = z.infer<typeof roleSchema>;

/** A presence object as in `GUILD_CREATE.presences` and `PRESENCE_UPDATE`. */
export const presenceSchema = z.looseObject({
  user: partialUserSchema,
  status: z.string().optional(),
  guild_id: snowflake.optional(),
});

/** A parsed presence. */
export type RawPresence = z.infer<typeof presenceSchema>;

/**
 * `GUILD_CREATE` data. Arrays are checked element by element by the caller,
 * so one malformed member does not drop the whole guild.
 */
export const guildCreateSchema = z.looseObject({
  id: snowflake,
  name: z.string().optional(),
  unavailable: z.boolean().optional(),
  large: z.boolean().optional(),
  member_count: z.number().int().nonnegative().optional(),
  members: z.array(z.unknown()).optional(),
  presences: z.array(z.unknown()).optional(),
  roles: z.array(z.unknown()).optional(),
});

/** `GUILD_UPDATE` data. */
export const guildUpdateSchema = z.looseObject({ id: snowflake, name: z.string() });

/** `GUILD_DELETE` data. */
export const guildDeleteSchema = z.looseObject({
  id: snowflake,
  unavailable: z.boolean().optional(),
});

/** `GUILD_MEMBERS_CHUNK` data. */
export const membersChunkSchema = z.looseObject({
  guild_id: snowflake,
  members: z.array(z.unknown()),
  presences: z.array(z.unknown()).optional(),
  chunk_index: z.number().int().nonnegative(),
  chunk_count: z.number().int().positive(),
  nonce: z.string().optional(),
});

/** `GUILD_MEMBER_ADD` / `GUILD_MEMBER_UPDATE` data: a member plus `guild_id`. */
export const memberEventSchema = z.looseObject({
  guild_id: snowflake,
  user: userSchema,
  nick: z.string().nullable().optional(),
  roles: z.array(snowflake).default([]),
});

/** `GUILD_MEMBER_REMOVE` data. */
export const memberRemoveSchema = z.looseObject({
  guild_id: snowflake,
  user: z.looseObject({ id: snowflake }),
});

/** `GUILD_ROLE_CREATE` / `GUILD_ROLE_UPDATE` data. */
export const roleEventSchema = z.looseObject({ guild_id: snowflake, role: z.unknown() });

/** `GUILD_ROLE_DELETE` data. */
export const roleDeleteSchema = z.looseObject({ guild_id: snowflake, role_id: snowflake });

/** `PRESENCE_UPDATE` data. */
export const presenceUpdateSchema = z.looseObject({
  guild_id: snowflake,
  user: partialUserSchema,
  status: z.string().optional(),
});

/** `MESSAGE_CREATE` data (the fields used). */
export const messageCreateSchema = z.looseObject({
  id: snowflake.optional(),
  guild_id: snowflake.optional(),
  channel_id: snowflake,
  content: z.string().default(""),
  webhook_id: snowflake.optional(),
  author: userSchema,
  member: z.looseObject({
    nick: z.string().nullable().optional(),
    roles: z.array(snowflake).default([]),
  }).optional(),
});

/** `RATE_LIMITED` data (Discord answers a too-frequent op 8 with it). */
export const rateLimitedSchema = z.looseObject({
  opcode: z.number().int(),
  retry_after: z.number().nonnegative(),
  meta: z.looseObject({ guild_id: snowflake.optional(), nonce: z.string().optional() }).optional(),
});

/** `session_start_limit` of `GET /gateway/bot`: the IDENTIFY budget (`reset_after` in ms). */
export const sessionStartLimitSchema = z.looseObject({
  total: z.number().int().nonnegative(),
  remaining: z.number().int().nonnegative(),
  reset_after: z.number().nonnegative(),
  max_concurrency: z.number().int().positive().default(1),
});

/**
 * `GET /gateway/bot` answer (the fields used). A malformed `shards` or
 * `session_start_limit` is dropped rather than failing the whole answer.
 */
export const gatewayBotSchema = z.looseObject({
  url: z.string().min(1),
  shards: z.number().int().positive().optional().catch(undefined),
  session_start_limit: sessionStartLimitSchema.optional().catch(undefined),
});

/** A gateway session that can be resumed, as kept by a session store. */
export const storedSessionSchema = z.object({
  sessionId: z.string().min(1).max(200),
  seq: z.number().int().nonnegative(),
  resumeUrl: z.string().min(1).max(2000),
  shards: z.number().int().positive().optional(),
});

/** Parse each element of `items` with `schema`, dropping (and counting) the malformed ones. */
export function parseEach<T>(
  schema: z.ZodType<T>,
  items: readonly unknown[] | undefined,
): { ok: T[]; bad: number } {
  const ok: T[] = [];
  let bad = 0;
  for (const item of items ?? []) {
    const r = schema.safeParse(item);
    if (r.success) ok.push(r.data);
    else bad++;
  }
  return { ok, bad };
}
