/**
 * Options of the Discord gateway source: the public option type, its zod
 * check (every error names the option) and the normalisation of the legacy
 * shorthands (`guildIds`, `slugs`) into per-server entries.
 *
 * @module
 */
import { z } from "zod";
import { type LogLevel, logLevelSchema, type LogSink } from "../log.ts";
import { parseOrThrow } from "../_zod.ts";
import { checkServers, type ServerConfig, serverConfigSchema } from "./_config.ts";
import { DEFAULT_INTENTS, type DiscordGatewayError, type GatewayTiming } from "./_gateway_types.ts";
import { DEFAULT_API_BASE, type FetchLike } from "./_rest.ts";
import { snowflake } from "./_schemas.ts";
import type { DiscordResume } from "./_resume.ts";

/** Options of `DiscordGatewaySource`. */
export interface DiscordSourceOptions {
  /** Bot token from the developer portal (without the `Bot ` prefix). Required. */
  token: string;
  /**
   * Per-server settings (see the README's configuration file format), in
   * server-list order. Without `allGuilds`, only these guilds are served.
   */
  servers?: ServerConfig[];
  /** Serve every guild the bot is in; `servers` then only adds settings and order. */
  allGuilds?: boolean;
  /**
   * Guild ids to serve, in the order of the server list; the first is the
   * default. Shorthand for `servers: [{ id }, …]`. Default (without
   * `servers`): every guild the bot is in.
   */
  guildIds?: string[];
  /** Only messages from these channel (or thread) ids are shown, in guilds without their own filter. */
  channelIds?: string[];
  /** Short id per guild id for the server list (default: the guild id itself). */
  slugs?: Record<string, string>;
  /** OAuth2 application id; enables `getClientId` (needed for Discord login). */
  clientId?: string;
  /** Every guild needs a Discord login: viewers must log in with Discord and be members. */
  passworded?: boolean;
  /** Whether offline members are in the user map, where a server does not say. Default `true`. */
  includeOffline?: boolean;
  /** Message that makes the bot reply with the viewer URL (e.g. `"!d-zone"`). Needs `url`. */
  infoCommand?: string;
  /** The d-zone page viewers open; the info reply adds `?s=<server>`. */
  url?: string;
  /** Least time between two info replies in one channel, ms. Default 30000. */
  infoCooldownMs?: number;
  /** Number of shards, or `"auto"` for the count `GET /gateway/bot` recommends. Default 1. */
  shards?: number | "auto";
  /** A member request (op 8) that is not complete after this long is sent again, ms. Default 60000. */
  memberRequestTimeoutMs?: number;
  /** Fixed gateway URL (e.g. a test server). Default: `GET {apiBase}/gateway/bot`, else `wss://gateway.discord.gg`. */
  gatewayUrl?: string;
  /** REST API base. Default `https://discord.com/api/v10`. */
  apiBase?: string;
  /** Intents to identify with. Default {@link DEFAULT_INTENTS}. */
  intents?: number;
  /** How long `start()` waits for the served guilds to arrive after READY, ms. Default 15000. */
  guildTimeoutMs?: number;
  /** `fetch` used for REST calls. Default: the global `fetch`. */
  fetch?: FetchLike;
  /**
   * Lowest level logged. Run by a server, the source logs through the server's
   * logger (its level and sink) and this drops lines before they get there;
   * started alone it defaults to `"info"`.
   */
  logLevel?: LogLevel;
  /**
   * Where log lines go, at `logLevel`, instead of the server's logger. Default:
   * the server's logger when a server starts the source, else the console.
   */
  logSink?: LogSink;
  /** Called once when the source stops for good on a fatal error (bad token, disallowed intents…). */
  onError?: (error: DiscordGatewayError) => void;
  /** Called when a member leaves a guild, e.g. to drop cached logins of your own validator. */
  onMemberLeave?: (userId: string, guildId: string) => void;
  /**
   * Gateway timing knobs; the defaults follow Discord's guidance (IDENTIFYs
   * 5 s apart per bucket, reconnect backoff 1 s doubling to 60 s, at most 110
   * frames per 60 s where Discord allows 120, HELLO within 10 s, READY or
   * RESUMED within 30 s). Tests shorten them.
   */
  timing?: GatewayTiming;
  /**
   * Take over another process's gateway session (scale-out failover): the
   * stored session is RESUMEd on the guild snapshot `guilds()` gives, and
   * the session is kept saved while running. See {@link DiscordResume}.
   */
  resume?: DiscordResume;
}

const optionsSchema = z.object({
  token: z.string().trim().min(1, "token is required"),
  servers: z.array(serverConfigSchema).optional(),
  allGuilds: z.boolean().default(false),
  guildIds: z.array(snowflake).optional(),
  channelIds: z.array(snowflake).optional(),
  slugs: z.record(snowflake, z.string().min(1).max(200)).optional(),
  clientId: z.string().regex(/^\d{1,25}$/, "clientId must be a snowflake").optional(),
  passworded: z.boolean().default(false),
  includeOffline: z.boolean().default(true),
  infoCommand: z.string().trim().min(1).max(100).optional(),
  url: z.url({ protocol: /^https?$/, error: "url must be an http:// or https:// URL" }).optional(),
  infoCooldownMs: z.number().int().nonnegative().default(30_000),
  shards: z.union([z.literal("auto"), z.number().int().min(1).max(1024)]).default(1),
  memberRequestTimeoutMs: z.number().int().positive().default(60_000),
  gatewayUrl: z.url({ protocol: /^wss?$/, error: "gatewayUrl must be a ws:// or wss:// URL" })
    .optional(),
  apiBase: z.url({ protocol: /^https?$/, error: "apiBase must be an http:// or https:// URL" })
    .default(DEFAULT_API_BASE),
  intents: z.number().int().nonnegative().default(DEFAULT_INTENTS),
  guildTimeoutMs: z.number().int().nonnegative().default(15_000),
  logLevel: logLevelSchema.default("info"),
}).superRefine((o, ctx) => {
  if (o.servers && o.guildIds) {
    ctx.addIssue({
      code: "custom",
      path: ["guildIds"],
      message: "give servers or guildIds, not both",
    });
  }
  if (o.servers) checkServers(o.servers, ctx, ["servers"]);
  if (o.infoCommand && !o.url && !o.servers?.some((s) => s.url)) {
    ctx.addIssue({
      code: "custom",
      path: ["url"],
      message: "infoCommand needs url (the viewer page)",
    });
  }
});

/** Checked options, functions excluded. */
export type SourceSettings = z.output<typeof optionsSchema>;

/** Check `options` (functions taken out) and list the configured servers in order. Throws a `TypeError` naming the option. */
export function parseSourceOptions(
  options: Omit<
    DiscordSourceOptions,
    "fetch" | "logSink" | "onError" | "onMemberLeave" | "timing" | "resume"
  >,
): { settings: SourceSettings; entries: Map<string, ServerConfig> } {
  const o = parseOrThrow(optionsSchema, options, "Invalid DiscordGatewaySource options");
  const servers: ServerConfig[] = o.servers ??
    (o.guildIds ?? []).map((id) => serverConfigSchema.parse({ id, slug: o.slugs?.[id] }));
  if (!o.servers && !o.guildIds && o.slugs) {
    // All guilds, with slugs for some.
    for (const [id, slug] of Object.entries(o.slugs)) servers.push({ id, slug });
  }
  const entries = new Map<string, ServerConfig>();
  const taken = new Set<string>();
  for (const s of servers) {
    const slug = s.slug ?? s.id;
    if (taken.has(slug)) {
      throw new TypeError(`Invalid DiscordGatewaySource options: slug "${slug}" is used twice`);
    }
    taken.add(slug);
    entries.set(s.id, s);
  }
  if (!o.servers && !o.guildIds) o.allGuilds = true;
  if (o.servers?.length === 0 && !o.allGuilds) {
    throw new TypeError(
      "Invalid DiscordGatewaySource options: servers: list at least one, or set allGuilds",
    );
  }
  return { settings: o, entries };
}
