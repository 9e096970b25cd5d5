/**
 * Serve real Discord guilds to d-zone: a {@link WebSocketServer} whose data
 * source is a {@link DiscordGatewaySource}. Configuration comes from a JSON
 * file (`--config`, see the README for the format) or, for the simple case,
 * from the environment:
 *
 * ```sh
 * export DISCORD_TOKEN=...                 # bot token (required unless in the file)
 * export DISCORD_GUILD_IDS=123,456         # guilds to show, first is the default
 * export DISCORD_ALL_GUILDS=false          # or: every guild the bot is in
 * export DISCORD_CHANNEL_IDS=789           # only messages from these channels (optional)
 * export DISCORD_CLIENT_ID=...             # OAuth2 application id (optional)
 * export DISCORD_PASSWORDED=false          # viewers must log in with Discord (optional)
 * export DISCORD_INCLUDE_OFFLINE=true      # show offline members (optional)
 * deno run -A examples/discord.ts --port 3000
 * deno run -A examples/discord.ts --config discord-config.json
 * bun run examples/discord.ts --config discord-config.json   # the same on Bun
 * ```
 *
 * @module
 */
import process from "node:process";
import { z } from "zod";
import {
  type DiscordConfig,
  DiscordConfigError,
  DiscordGatewaySource,
  type DiscordSourceOptions,
  loadDiscordConfig,
} from "../src/discord/mod.ts";
import { intFlag, parseFlags, shutdownSignal } from "../src/_flags.ts";
import { consoleSink, LOG_LEVELS, type LogLevel } from "../src/log.ts";
import { WebSocketServer } from "../src/server.ts";

/** The text `--help` prints. */
export const USAGE: string = `Serve Discord guilds to d-zone through the Discord gateway.

Usage: deno run -A examples/discord.ts [options]
   or: bun run examples/discord.ts [options]

Options:
  --config <path>        JSON configuration file (servers and their settings;
                         see the README); wins over the DISCORD_* variables
  --port <n>             TCP port, 0 picks a free one (default 3000)
  --host <name>          interface to bind (default localhost; 0.0.0.0 for all)
  --gateway-url <url>    gateway WebSocket URL (default: asked of the API, else
                         wss://gateway.discord.gg)
  --api-base <url>       REST API base (default https://discord.com/api/v10)
  --log-level <level>    debug, info, warn, error or silent (default info)
  --redis <url>          run as one of several instances over Redis
                         (redis://host:port): every instance serves viewers,
                         one at a time holds the Discord connection (see the
                         README, "Several instances")
  --redis-namespace <ns> key and channel prefix in Redis (default dback)
  -h, --help             print this help and exit

Environment (without --config; with it, only DISCORD_TOKEN is read, and only
when the file has no token):
  DISCORD_TOKEN            bot token (developer portal → your app → Bot → Reset Token). Required.
  DISCORD_GUILD_IDS        comma-separated guild ids to show; the first is the default.
                           Required unless DISCORD_ALL_GUILDS=true.
  DISCORD_ALL_GUILDS       true/false: show every guild the bot is in (default false)
  DISCORD_CHANNEL_IDS      comma-separated channel ids whose messages are shown (default: all)
  DISCORD_CLIENT_ID        OAuth2 application id, sent to the client for Discord login
  DISCORD_PASSWORDED       true/false: viewers must log in with Discord and be members
                           (default false)
  DISCORD_INCLUDE_OFFLINE  true/false: show offline members (default true)

The bot needs the privileged intents SERVER MEMBERS, PRESENCE and MESSAGE
CONTENT (developer portal → Bot → Privileged Gateway Intents). Then open the
d-zone client with ?socketURL=ws://localhost:3000
`;

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
  config: z.string().min(1, "--config must name a file").optional(),
  redis: z.string().regex(/^rediss?:\/\/\S+$/, "--redis must be redis://host:port").optional(),
  "redis-namespace": z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "--redis-namespace must be 1-64 letters, digits, '_', '.' or '-'",
  ).optional(),
  help: z.boolean().optional(),
}).refine((f) => f.redis !== undefined || f["redis-namespace"] === undefined, {
  message: "--redis-namespace needs --redis",
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

const tokenSchema = z.string({
  error: "DISCORD_TOKEN is not set: copy the bot token from the Discord developer portal " +
    "(your application → Bot → Reset Token) and export DISCORD_TOKEN=...",
}).trim().min(1, "DISCORD_TOKEN is empty");

const envSchema = z.object({
  DISCORD_TOKEN: tokenSchema,
  DISCORD_ALL_GUILDS: bool("DISCORD_ALL_GUILDS").optional(),
  DISCORD_GUILD_IDS: idList("DISCORD_GUILD_IDS").optional(),
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
}).refine((e) => e.DISCORD_ALL_GUILDS || (e.DISCORD_GUILD_IDS?.length ?? 0) > 0, {
  message: "DISCORD_GUILD_IDS is not set: give the ids of the guilds to show, comma-separated " +
    "(Discord → User Settings → Advanced → Developer Mode, then right-click a server → " +
    "Copy Server ID), or set DISCORD_ALL_GUILDS=true, or use --config",
});

const ENV_KEYS = [
  "DISCORD_TOKEN",
  "DISCORD_ALL_GUILDS",
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

/** Source options from the configuration file; the token from the file, else the environment. */
function fromFile(
  c: DiscordConfig,
  getEnv: (key: string) => string | undefined,
): { ok: true; options: DiscordSourceOptions } | { ok: false; message: string } {
  const token = c.token ?? tokenSchema.safeParse(getEnv("DISCORD_TOKEN"));
  if (typeof token !== "string" && !token.success) {
    return {
      ok: false,
      message: `${token.error.issues[0].message} (or put "token" in the configuration file)`,
    };
  }
  return {
    ok: true,
    options: {
      token: typeof token === "string" ? token : token.data,
      servers: c.servers,
      allGuilds: c.allGuilds,
      clientId: c.clientId,
      includeOffline: c.hideOffline === undefined ? true : !c.hideOffline,
      infoCommand: c.infoCommand,
      url: c.url,
      infoCooldownMs: c.infoCooldownSeconds === undefined
        ? undefined
        : c.infoCooldownSeconds * 1000,
      shards: c.shards,
    },
  };
}

/** A URL a browser on this machine can use (a wildcard bind address is not one). */
export function socketUrl(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return `ws://localhost:${port}`;
  return host.includes(":") ? `ws://[${host}]:${port}` : `ws://${host}:${port}`;
}

/**
 * Run the example; resolves with the exit code. `getEnv` lets tests pass
 * their own environment. SIGINT and SIGTERM end it with 0 at any stage,
 * also while the gateway is still connecting.
 */
export async function main(
  args: string[],
  getEnv: (key: string) => string | undefined = (k) => process.env[k],
): Promise<number> {
  const shutdown = shutdownSignal();
  shutdown.onAgain(() => {
    console.error("second signal: exiting without waiting for the drain");
    process.exit(1);
  });
  try {
    return await run(args, getEnv, shutdown.signalled);
  } finally {
    shutdown.dispose();
  }
}

async function run(
  args: string[],
  getEnv: (key: string) => string | undefined,
  signalled: Promise<unknown>,
): Promise<number> {
  const flags = parseFlags(args, {
    config: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    "gateway-url": { type: "string" },
    "api-base": { type: "string" },
    "log-level": { type: "string" },
    redis: { type: "string" },
    "redis-namespace": { type: "string" },
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
  const f = flags.value;
  const logLevel = f["log-level"];
  let options: DiscordSourceOptions;
  if (f.config !== undefined) {
    let config: DiscordConfig;
    try {
      config = await loadDiscordConfig(f.config);
    } catch (err) {
      if (!(err instanceof DiscordConfigError)) throw err;
      for (const p of err.problems) console.error(`error: ${f.config}: ${p}`);
      return 2;
    }
    const r = fromFile(config, getEnv);
    if (!r.ok) {
      console.error(`error: ${r.message}`);
      return 2;
    }
    options = r.options;
  } else {
    const env = envSchema.safeParse(readEnv(getEnv));
    if (!env.success) {
      for (const issue of env.error.issues) console.error(`error: ${issue.message}`);
      console.error("\nRun with --help for the list of variables.");
      return 2;
    }
    const e = env.data;
    options = {
      token: e.DISCORD_TOKEN,
      allGuilds: e.DISCORD_ALL_GUILDS ?? false,
      ...(e.DISCORD_GUILD_IDS?.length ? { guildIds: e.DISCORD_GUILD_IDS } : {}),
      channelIds: e.DISCORD_CHANNEL_IDS,
      clientId: e.DISCORD_CLIENT_ID,
      passworded: e.DISCORD_PASSWORDED ?? false,
      includeOffline: e.DISCORD_INCLUDE_OFFLINE ?? true,
    };
  }

  const { promise: failed, resolve: fail } = Promise.withResolvers<Error>();
  // The source running now; with --redis, a fresh one for each term as publisher
  // (a gateway source does not start again after a stop).
  let discord: DiscordGatewaySource;
  const newSource = () =>
    discord = new DiscordGatewaySource({
      ...options,
      gatewayUrl: f["gateway-url"],
      apiBase: f["api-base"],
      logLevel,
      logSink: consoleSink,
      onError: (err) => fail(err),
    });
  try {
    discord = newSource(); // checks the options before anything connects
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : err}`);
    return 2;
  }
  let spare: DiscordGatewaySource | undefined = discord;
  // Loaded only with --redis, so a single instance never loads the Redis client.
  const cluster = f.redis === undefined ? undefined : (await import("../src/redis/mod.ts"))
    .redisCluster({
      url: f.redis,
      namespace: f["redis-namespace"],
      logLevel,
      logSink: consoleSink,
      source: () => {
        const first = spare;
        spare = undefined;
        return first ?? newSource();
      },
    });
  const server = new WebSocketServer({
    port: f.port,
    hostname: f.host,
    logLevel,
    source: cluster?.source ?? discord,
    broker: cluster?.broker,
  });
  // The server starts the source first (it rejects on a bad token or disallowed
  // intents) and listens once the guilds are in. A signal may come at any moment.
  const started = server.start().then(() => null, (err: unknown) => err);
  const first = await Promise.race([started, signalled.then(() => "signal" as const)]);
  if (first === "signal") {
    // Stopping the source first makes a start() still waiting for READY give up at once.
    await discord.stop();
    await started;
    await server.stop();
    await cluster?.close();
    return 0;
  }
  if (first !== null) {
    await server.stop();
    await discord.stop();
    await cluster?.close();
    if (discord.error) console.error(`error: ${discord.error.message}`);
    else {
      console.error(
        `error: cannot listen on ${f.host}:${f.port}: ${
          first instanceof Error ? first.message : first
        }`,
      );
    }
    return 1;
  }
  if (discord.ready && discord.guildIds.length === 0) {
    console.error(
      "warning: none of the configured guilds is available to the bot yet; " +
        "check the ids and that the bot was invited to those servers",
    );
  }
  console.log(`open d-zone with ?socketURL=${socketUrl(f.host, server.port)}`);

  const outcome = await Promise.race([signalled.then(() => null), failed]);
  await server.stop();
  await discord.stop();
  await cluster?.close();
  if (outcome) {
    console.error(`error: ${outcome.message}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
