/**
 * Serve real Discord guilds to d-zone: a {@link WebSocketServer} fed by a
 * {@link DiscordGatewaySource}. Configuration comes from the environment:
 *
 * ```sh
 * export DISCORD_TOKEN=...                 # bot token (required)
 * export DISCORD_GUILD_IDS=123,456         # guilds to show, first is the default (required)
 * export DISCORD_CHANNEL_IDS=789           # only messages from these channels (optional)
 * export DISCORD_CLIENT_ID=...             # OAuth2 application id (optional)
 * export DISCORD_PASSWORDED=false          # viewers must log in with Discord (optional)
 * export DISCORD_INCLUDE_OFFLINE=true      # show offline members (optional)
 * deno run -A examples/discord.ts --port 3000
 * ```
 *
 * @module
 */
import { z } from "zod";
import { DiscordGatewaySource } from "../src/discord/mod.ts";
import { parseFlags, shutdownSignal } from "../src/flags.ts";
import { consoleSink, LOG_LEVELS, type LogLevel } from "../src/log.ts";
import { WebSocketServer } from "../src/server.ts";

/** The text `--help` prints. */
export const USAGE: string = `Serve Discord guilds to d-zone through the Discord gateway.

Usage: deno run -A examples/discord.ts [options]

Options:
  --port <n>             TCP port, 0 picks a free one (default 3000)
  --host <name>          interface to bind (default localhost; 0.0.0.0 for all)
  --gateway-url <url>    gateway WebSocket URL (default: asked of the API, else
                         wss://gateway.discord.gg)
  --api-base <url>       REST API base (default https://discord.com/api/v10)
  --log-level <level>    debug, info, warn, error or silent (default info)
  -h, --help             print this help and exit

Environment:
  DISCORD_TOKEN            bot token (developer portal → your app → Bot → Reset Token). Required.
  DISCORD_GUILD_IDS        comma-separated guild ids to show; the first is the default. Required.
  DISCORD_CHANNEL_IDS      comma-separated channel ids whose messages are shown (default: all)
  DISCORD_CLIENT_ID        OAuth2 application id, sent to the client for Discord login
  DISCORD_PASSWORDED       true/false: viewers must log in with Discord and be members
                           (default false)
  DISCORD_INCLUDE_OFFLINE  true/false: show offline members (default true)

The bot needs the privileged intents SERVER MEMBERS, PRESENCE and MESSAGE
CONTENT (developer portal → Bot → Privileged Gateway Intents). Then open the
d-zone client with ?socketURL=ws://localhost:3000
`;

const intFlag = (name: string, min: number, max: number) =>
  z.string().regex(/^\d+$/, `--${name} must be a whole number`).transform(Number).pipe(
    z.number().min(min, `--${name} must be at least ${min}`).max(
      max,
      `--${name} must be at most ${max}`,
    ),
  );

const flagsSchema = z.object({
  port: intFlag("port", 0, 65535).default(3000),
  host: z.string().min(1, "--host must not be empty").default("localhost"),
  "gateway-url": z.url({
    protocol: /^wss?$/,
    error: "--gateway-url must be a ws:// or wss:// URL",
  }).optional(),
  "api-base": z.url({
    protocol: /^https?$/,
    error: "--api-base must be an http:// or https:// URL",
  }).optional(),
  "log-level": z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]], {
    error: `--log-level must be one of ${LOG_LEVELS.join(", ")}`,
  }).default("info"),
  help: z.boolean().optional(),
});

const idList = (name: string) =>
  z.string().transform((s, ctx) => {
    const ids = s.split(",").map((x) => x.trim()).filter((x) => x !== "");
    for (const id of ids) {
      if (!/^\d{15,25}$/.test(id)) {
        ctx.addIssue({
          code: "custom",
          message: `${name}: "${id}" is not a Discord id (15 to 25 digits)`,
        });
        return z.NEVER;
      }
    }
    return ids;
  });

const bool = (name: string) =>
  z.string().trim().toLowerCase().transform((s, ctx) => {
    if (["true", "1", "yes", "on"].includes(s)) return true;
    if (["false", "0", "no", "off"].includes(s)) return false;
    ctx.addIssue({ code: "custom", message: `${name} must be true or false, not "${s}"` });
    return z.NEVER;
  });

const envSchema = z.object({
  DISCORD_TOKEN: z.string({
    error: "DISCORD_TOKEN is not set: copy the bot token from the Discord developer portal " +
      "(your application → Bot → Reset Token) and export DISCORD_TOKEN=...",
  }).trim().min(1, "DISCORD_TOKEN is empty"),
  DISCORD_GUILD_IDS: z.string({
    error: "DISCORD_GUILD_IDS is not set: give the ids of the guilds to show, comma-separated " +
      "(Discord → User Settings → Advanced → Developer Mode, then right-click a server → Copy Server ID)",
  }).pipe(idList("DISCORD_GUILD_IDS")).refine(
    (ids) => ids.length > 0,
    "DISCORD_GUILD_IDS is empty",
  ),
  DISCORD_CHANNEL_IDS: idList("DISCORD_CHANNEL_IDS").optional(),
  DISCORD_CLIENT_ID: z.string().trim().regex(
    /^\d{15,25}$/,
    "DISCORD_CLIENT_ID must be the application id (15 to 25 digits)",
  ).optional(),
  DISCORD_PASSWORDED: bool("DISCORD_PASSWORDED").optional(),
  DISCORD_INCLUDE_OFFLINE: bool("DISCORD_INCLUDE_OFFLINE").optional(),
}).refine((e) => !e.DISCORD_PASSWORDED || e.DISCORD_CLIENT_ID !== undefined, {
  message: "DISCORD_PASSWORDED=true needs DISCORD_CLIENT_ID: the client logs in with Discord " +
    "OAuth2 using that application id",
});

const ENV_KEYS = [
  "DISCORD_TOKEN",
  "DISCORD_GUILD_IDS",
  "DISCORD_CHANNEL_IDS",
  "DISCORD_CLIENT_ID",
  "DISCORD_PASSWORDED",
  "DISCORD_INCLUDE_OFFLINE",
];

/** Read the variables this example uses; blank counts as unset. */
function readEnv(get: (key: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ENV_KEYS) {
    const v = get(key);
    if (v !== undefined && v.trim() !== "") out[key] = v;
  }
  return out;
}

/**
 * Run the example; resolves with the exit code. `getEnv` lets tests pass
 * their own environment.
 */
export async function main(
  args: string[],
  getEnv: (key: string) => string | undefined = (k) => Deno.env.get(k),
): Promise<number> {
  const flags = parseFlags(args, {
    port: { type: "string" },
    host: { type: "string" },
    "gateway-url": { type: "string" },
    "api-base": { type: "string" },
    "log-level": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, flagsSchema);
  if (!flags.ok) {
    console.error(`error: ${flags.message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.value.help) {
    console.log(USAGE);
    return 0;
  }
  const env = envSchema.safeParse(readEnv(getEnv));
  if (!env.success) {
    for (const issue of env.error.issues) console.error(`error: ${issue.message}`);
    console.error("\nRun with --help for the list of variables.");
    return 2;
  }
  const f = flags.value;
  const e = env.data;
  const logLevel = f["log-level"];

  const { promise: failed, resolve: fail } = Promise.withResolvers<Error>();
  const source = new DiscordGatewaySource({
    token: e.DISCORD_TOKEN,
    guildIds: e.DISCORD_GUILD_IDS,
    channelIds: e.DISCORD_CHANNEL_IDS,
    clientId: e.DISCORD_CLIENT_ID,
    passworded: e.DISCORD_PASSWORDED ?? false,
    includeOffline: e.DISCORD_INCLUDE_OFFLINE ?? true,
    gatewayUrl: f["gateway-url"],
    apiBase: f["api-base"],
    logLevel,
    logSink: consoleSink,
    onError: (err) => fail(err),
  });
  try {
    await source.start();
  } catch (err) {
    await source.close();
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
  if (source.guildIds.length === 0) {
    console.error(
      "warning: none of DISCORD_GUILD_IDS is available to the bot yet; " +
        "check the ids and that the bot was invited to those servers",
    );
  }

  const server = new WebSocketServer({
    port: f.port,
    hostname: f.host,
    logLevel,
    callbacks: source.callbacks(),
  });
  source.attach(server);
  try {
    await server.start();
  } catch (err) {
    await source.close();
    console.error(
      `error: cannot listen on ${f.host}:${f.port}: ${err instanceof Error ? err.message : err}`,
    );
    return 1;
  }
  console.log(`open d-zone with ?socketURL=ws://${f.host}:${server.port}`);

  const shutdown = shutdownSignal();
  const outcome = await Promise.race([shutdown.signalled.then(() => null), failed]);
  shutdown.dispose();
  await source.close();
  await server.stop();
  if (outcome) {
    console.error(`error: ${outcome.message}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
