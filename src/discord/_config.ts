/**
 * Per-server settings of the Discord gateway source and the JSON
 * configuration file that carries them (the successor of d-zone's
 * `discord-config.json`). Validation only, no I/O besides
 * {@link loadDiscordConfig} reading the file: every error names the field.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { errorText } from "../_errors.ts";

const id = (what: string) =>
  z.string().regex(/^\d{15,25}$/, `${what} must be a Discord id (15 to 25 digits)`);

/** A channel given by id or by name (with or without the leading `#`). */
const channelRef = z.string().trim().min(1, "must not be empty").max(100, "at most 100 characters")
  .transform((s) => s.replace(/^#/, ""));

/** Settings of one served Discord server (guild), as written in the file or passed as an option. */
export interface ServerConfig {
  /** Guild id. */
  id: string;
  /** The server d-zone opens when the page names none. At most one. */
  default?: boolean;
  /** Short id in the server list and in d-zone URLs (`?s=`). Default: the guild id. */
  slug?: string;
  /** Name shown instead of the guild's. */
  alias?: string;
  /** Legacy shared password (old clients); makes the server passworded. */
  password?: string;
  /** Viewers must log in with Discord and be members (needs `clientId`). */
  discordLogin?: boolean;
  /** Channels (ids or names) whose messages are not shown. Not with `listenChannels`. */
  ignoreChannels?: string[];
  /** Only messages from these channels (ids or names) are shown. Not with `ignoreChannels`. */
  listenChannels?: string[];
  /** Users (ids or usernames) never shown. */
  ignoreUsers?: string[];
  /** Leave offline members out. */
  hideOffline?: boolean;
  /** Viewer page for the info command, when it differs from the global `url`. */
  url?: string;
}

/** Validates a {@link ServerConfig}. */
export const serverConfigSchema: z.ZodType<ServerConfig> = z.strictObject({
  id: id("id"),
  default: z.boolean().optional(),
  slug: z.string().trim().min(1, "must not be empty").max(200, "at most 200 characters")
    .optional(),
  alias: z.string().trim().min(1, "must not be empty").max(100, "at most 100 characters")
    .optional(),
  password: z.string().min(1, "must not be empty").max(4096, "at most 4096 characters")
    .optional(),
  discordLogin: z.boolean().optional(),
  ignoreChannels: z.array(channelRef).optional(),
  listenChannels: z.array(channelRef).optional(),
  ignoreUsers: z.array(z.string().trim().min(1, "must not be empty").max(100)).optional(),
  hideOffline: z.boolean().optional(),
  url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
}).refine((s) => !(s.ignoreChannels && s.listenChannels), {
  path: ["listenChannels"],
  message: "give either ignoreChannels or listenChannels, not both",
});

/** The configuration file: global settings and a list of servers. */
export interface DiscordConfig {
  /** Bot token; the `DISCORD_TOKEN` variable is used when absent. */
  token?: string;
  /** OAuth2 application id (Discord login). */
  clientId?: string;
  /** Serve every guild the bot is in; `servers` then only adds settings and order. */
  allGuilds: boolean;
  /** Leave offline members out, where a server does not say. */
  hideOffline?: boolean;
  /** The d-zone page viewers open (info command replies). */
  url?: string;
  /** Message that makes the bot reply with the viewer URL. */
  infoCommand?: string;
  /** Least time between two info replies in one channel, seconds. */
  infoCooldownSeconds?: number;
  /** Number of shards, or `"auto"`. */
  shards?: number | "auto";
  /** Served servers and their settings, in server-list order. */
  servers: ServerConfig[];
}

/** Validates a {@link DiscordConfig}. */
export const discordConfigSchema: z.ZodType<DiscordConfig> = z.strictObject({
  token: z.string().trim().min(1, "must not be empty").optional(),
  clientId: id("clientId").optional(),
  allGuilds: z.boolean().default(false),
  hideOffline: z.boolean().optional(),
  url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
  infoCommand: z.string().trim().min(1, "must not be empty").max(100, "at most 100 characters")
    .optional(),
  infoCooldownSeconds: z.number().int("must be a whole number").min(1).max(86_400).optional(),
  shards: z.union([z.literal("auto"), z.number().int().min(1).max(1024)]).optional(),
  servers: z.array(serverConfigSchema).default([]),
}).superRefine((c, ctx) => {
  if (c.servers.length === 0 && !c.allGuilds) {
    ctx.addIssue({
      code: "custom",
      path: ["servers"],
      message: "list at least one server, or set allGuilds: true",
    });
  }
  checkServers(c.servers, ctx, ["servers"]);
  c.servers.forEach((s, i) => {
    if (s.discordLogin && !c.clientId) {
      ctx.addIssue({
        code: "custom",
        path: ["servers", i, "discordLogin"],
        message: "needs clientId (the OAuth2 application id the client logs in with)",
      });
    }
  });
});

/** Unique ids and slugs, at most one default. Shared by the file and the source options. */
export function checkServers(
  servers: readonly ServerConfig[],
  ctx: z.core.$RefinementCtx,
  path: (string | number)[],
): void {
  const ids = new Set<string>();
  const slugs = new Set<string>();
  let defaults = 0;
  servers.forEach((s, i) => {
    if (ids.has(s.id)) {
      ctx.addIssue({
        code: "custom",
        path: [...path, i, "id"],
        message: `${s.id} is listed twice`,
      });
    }
    ids.add(s.id);
    const slug = s.slug ?? s.id;
    if (slugs.has(slug)) {
      ctx.addIssue({
        code: "custom",
        path: [...path, i, "slug"],
        message: `"${slug}" is used twice`,
      });
    }
    slugs.add(slug);
    if (s.default) {
      if (++defaults > 1) {
        ctx.addIssue({
          code: "custom",
          path: [...path, i, "default"],
          message: "only one server may be the default",
        });
      }
    }
  });
}

/** Describe every issue with the field it is about (`servers[1].alias: …`). */
export function describeConfigError(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    let where = "";
    for (const k of i.path) {
      where += typeof k === "number" ? `[${k}]` : where ? `.${String(k)}` : String(k);
    }
    return `${where || "(root)"}: ${i.message}`;
  });
}

/**
 * A configuration file that could not be used; `problems` name the fields.
 *
 * @example
 * ```ts
 * import { DiscordConfigError, parseDiscordConfig } from "@dzone/dback/discord";
 * let caught: unknown;
 * try {
 *   parseDiscordConfig(`{"allGuilds": true, "url": "ftp://x"}`, "c.json");
 * } catch (e) {
 *   caught = e;
 * }
 * // Fails when nothing was thrown, too.
 * if (!(caught instanceof DiscordConfigError) || !caught.problems[0].startsWith("url:")) {
 *   throw new Error(`expected a DiscordConfigError naming url, got ${caught}`);
 * }
 * ```
 */
export class DiscordConfigError extends Error {
  /** One line per problem, each naming its field. */
  readonly problems: string[];
  /** Create the error. */
  constructor(file: string, problems: string[]) {
    super(`${file}: ${problems.join("; ")}`);
    this.name = "DiscordConfigError";
    this.problems = problems;
  }
}

/**
 * Parse a configuration file's text. Throws a {@link DiscordConfigError}
 * naming each bad field.
 *
 * @example
 * ```ts
 * import { parseDiscordConfig } from "@dzone/dback/discord";
 * const c = parseDiscordConfig(JSON.stringify({
 *   servers: [{ id: "232769614004748288", alias: "D-World", hideOffline: true }],
 * }));
 * if (c.servers[0].alias !== "D-World") throw new Error("unexpected");
 * try {
 *   parseDiscordConfig(`{"servers":[{"id":"1"}]}`);
 *   throw new Error("should have failed");
 * } catch (e) {
 *   if (!String(e).includes("servers[0].id")) throw e;
 * }
 * ```
 */
export function parseDiscordConfig(text: string, file = "config"): DiscordConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DiscordConfigError(file, [
      `not valid JSON (${errorText(err)})`,
    ]);
  }
  const parsed = discordConfigSchema.safeParse(json);
  if (!parsed.success) throw new DiscordConfigError(file, describeConfigError(parsed.error));
  return parsed.data;
}

/**
 * Read and parse a configuration file (on Deno, needs `--allow-read`). Throws a
 * {@link DiscordConfigError} naming each bad field, or saying the file
 * cannot be read.
 *
 * @example
 * ```ts
 * import { mkdtemp, rm, writeFile } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { DiscordConfigError, DiscordGatewaySource, loadDiscordConfig } from "@dzone/dback/discord";
 *
 * const dir = await mkdtemp(join(tmpdir(), "dback-"));
 * const path = join(dir, "discord-config.json");
 * await writeFile(path, `{ "servers": [{ "id": "232769614004748288", "alias": "D-World" }] }`);
 * const config = await loadDiscordConfig(path);
 * const discord = new DiscordGatewaySource({
 *   token: config.token ?? "your-bot-token", // e.g. process.env.DISCORD_TOKEN
 *   servers: config.servers,
 *   allGuilds: config.allGuilds,
 * });
 * // A file that cannot be read is a DiscordConfigError too.
 * const missing = await loadDiscordConfig(join(dir, "nope.json")).catch((e: unknown) => e);
 * await rm(dir, { recursive: true });
 * if (config.allGuilds !== false || discord.ready) throw new Error("unexpected config");
 * if (!(missing instanceof DiscordConfigError)) throw new Error(`unexpected: ${missing}`);
 * ```
 */
export async function loadDiscordConfig(path: string): Promise<DiscordConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DiscordConfigError(path, [
      `cannot read the file (${errorText(err)})`,
    ]);
  }
  return parseDiscordConfig(text, path);
}

/** Settings of one guild, resolved from its entry and the global defaults. */
export interface ResolvedServer {
  /** Guild id. */
  id: string;
  /** Short id in the server list (`?s=` in d-zone URLs). */
  slug: string;
  /** Name shown instead of the guild's, when set. */
  alias: string | undefined;
  /** Whether joining needs a Discord login (or the legacy password). */
  passworded: boolean;
  /** Legacy shared password. */
  password: string | undefined;
  /** Channels (ids or names) whose messages are shown; `null`: all. */
  listenChannels: ReadonlySet<string> | null;
  /** Channels (ids or names) whose messages are never shown; `null`: none. */
  ignoreChannels: ReadonlySet<string> | null;
  /** Users (ids or usernames) never shown. */
  ignoreUsers: ReadonlySet<string>;
  /** Whether offline members are shown. */
  includeOffline: boolean;
  /** Viewer URL for the info command. */
  url: string | undefined;
}

/** Global defaults for guilds without an entry (all-guilds mode). */
export interface ServerDefaults {
  /** Every guild needs a Discord login. */
  passworded: boolean;
  /** Show offline members. */
  includeOffline: boolean;
  /** Default channel filter. */
  listenChannels: readonly string[] | undefined;
  /** Viewer URL. */
  url: string | undefined;
}

/** Resolve one guild's settings; `entry` may be absent (all-guilds mode). */
export function resolveServer(
  guildId: string,
  entry: ServerConfig | undefined,
  d: ServerDefaults,
): ResolvedServer {
  const listen = entry?.listenChannels ?? (entry?.ignoreChannels ? undefined : d.listenChannels);
  return {
    id: guildId,
    slug: entry?.slug ?? guildId,
    alias: entry?.alias,
    passworded: entry
      ? entry.discordLogin === true || entry.password !== undefined || d.passworded
      : d.passworded,
    password: entry?.password,
    listenChannels: listen ? new Set(listen) : null,
    ignoreChannels: entry?.ignoreChannels ? new Set(entry.ignoreChannels) : null,
    ignoreUsers: new Set(entry?.ignoreUsers ?? []),
    includeOffline: entry?.hideOffline !== undefined ? !entry.hideOffline : d.includeOffline,
    url: entry?.url ?? d.url,
  };
}
