/**
 * The Discord command (`examples/discord.ts`, internal): every server flag
 * of the mock command, plus where the Discord configuration comes from. It
 * binds its port first and serves the page, `/healthz` and `/api/status`
 * while the gateway connects; failures that may pass are retried for as
 * long as it runs; it exits non-zero only when Discord gives a definite
 * answer (bad token, disallowed intents), with one line saying so.
 *
 * @module
 */
import process from "node:process";
import type { RedisCluster } from "../redis/mod.ts";
import { z } from "zod";
import {
  type DiscordConfig,
  DiscordConfigError,
  DiscordGatewaySource,
  type DiscordSourceOptions,
  loadDiscordConfig,
} from "./mod.ts";
import { FATAL_CODES, GatewaySupervisor } from "./_supervisor.ts";
import { parseFlags, shutdownSignal } from "../_flags.ts";
import { consoleSink, LOG_LEVELS, type LogLevel } from "../log.ts";
import {
  loadServerFiles,
  SERVER_FLAG_CONFIG,
  SERVER_FLAGS_USAGE,
  serverFlags,
  serverFlagsSchema,
} from "../_server_flags.ts";
import { WebSocketServer } from "../server.ts";
import { VERSION } from "../version.ts";
import { errorText } from "../_errors.ts";
import { loadRedisEntry } from "../_redis_entry.ts";

/** The text `--help` prints. */
export const USAGE: string = `Serve Discord guilds to d-zone through the Discord gateway.

Usage: deno run -A examples/discord.ts [options]
   or: bun run examples/discord.ts [options]

Discord:
  --config <path>              JSON configuration file (servers and their settings;
                               see docs/discord.md); wins over the DISCORD_* variables
  --gateway-url <url>          gateway WebSocket URL (default: asked of the API, else
                               wss://gateway.discord.gg)
  --api-base <url>             REST API base (default https://discord.com/api/v10)

Server (the same flags as examples/main.ts):
${SERVER_FLAGS_USAGE}

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
  DBACK_LOG_LEVEL          default for --log-level

The port is bound first; the page and /healthz answer while the gateway
connects. Network failures are retried (backoff up to a minute) for as long
as the process runs; a rejected token or disallowed intents end it with 1.
The bot needs the privileged intents SERVER MEMBERS, PRESENCE and MESSAGE
CONTENT (developer portal → Bot → Privileged Gateway Intents). Then open the
d-zone client with ?socketURL=ws://localhost:3000
`;

const flagsSchema = serverFlagsSchema.extend({
  "gateway-url": z.url({
    protocol: /^wss?$/,
    error: "--gateway-url must be a ws:// or wss:// URL",
  }).optional(),
  "api-base": z.url({
    protocol: /^https?$/,
    error: "--api-base must be an http:// or https:// URL",
  }).optional(),
  config: z.string().min(1, "--config must name a file").optional(),
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
 * Run the command; resolves with the exit code. `getEnv` lets tests pass
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

/** Source options from the environment or the `--config` file, or the exit code of a problem. */
async function discordOptions(
  config: string | undefined,
  getEnv: (key: string) => string | undefined,
): Promise<DiscordSourceOptions | number> {
  if (config !== undefined) {
    let loaded: DiscordConfig;
    try {
      loaded = await loadDiscordConfig(config);
    } catch (err) {
      if (!(err instanceof DiscordConfigError)) throw err;
      for (const p of err.problems) console.error(`error: ${config}: ${p}`);
      return 2;
    }
    const r = fromFile(loaded, getEnv);
    if (!r.ok) {
      console.error(`error: ${r.message}`);
      return 2;
    }
    return r.options;
  }
  const env = envSchema.safeParse(readEnv(getEnv));
  if (!env.success) {
    for (const issue of env.error.issues) console.error(`error: ${issue.message}`);
    console.error("\nRun with --help for the list of variables.");
    return 2;
  }
  const e = env.data;
  return {
    token: e.DISCORD_TOKEN,
    allGuilds: e.DISCORD_ALL_GUILDS ?? false,
    ...(e.DISCORD_GUILD_IDS?.length ? { guildIds: e.DISCORD_GUILD_IDS } : {}),
    channelIds: e.DISCORD_CHANNEL_IDS,
    clientId: e.DISCORD_CLIENT_ID,
    passworded: e.DISCORD_PASSWORDED ?? false,
    includeOffline: e.DISCORD_INCLUDE_OFFLINE ?? true,
  };
}

async function run(
  args: string[],
  getEnv: (key: string) => string | undefined,
  signalled: Promise<unknown>,
): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const parsed = parseFlags(args, {
    ...SERVER_FLAG_CONFIG,
    config: { type: "string" },
    "gateway-url": { type: "string" },
    "api-base": { type: "string" },
  }, flagsSchema);
  const shared = parsed.ok ? serverFlags(parsed.value as Record<string, unknown>) : parsed;
  if (!shared.ok) {
    console.error(`error: ${shared.message}\n\n${USAGE}`);
    return 2;
  }
  const f = parsed.ok ? parsed.value : undefined!;
  if (f.version) {
    console.log(VERSION);
    return 0;
  }
  const flags = shared.value;
  const envLevel = getEnv("DBACK_LOG_LEVEL");
  if (flags.logLevel === undefined && envLevel && !LOG_LEVELS.includes(envLevel as LogLevel)) {
    console.error(`error: DBACK_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
    return 2;
  }
  const logLevel: LogLevel = flags.logLevel ?? (envLevel as LogLevel | undefined) ?? "info";
  const options = await discordOptions(f.config, getEnv);
  if (typeof options === "number") return options;
  const files = await loadServerFiles(flags);
  if (!files.ok) {
    console.error(`error: ${files.message}`);
    return 1;
  }

  const { promise: fatal, resolve: fail } = Promise.withResolvers<Error>();
  const sourceOptions: DiscordSourceOptions = {
    ...options,
    gatewayUrl: f["gateway-url"],
    apiBase: f["api-base"],
    logLevel,
    // A definite answer ends the command with its own "error:" line; not twice.
    logSink: (r) => {
      const code = r.level === "error" ? /^Gateway closed with (\d+)\b/.exec(r.message)?.[1] : null;
      if (!code || !FATAL_CODES.has(Number(code))) consoleSink(r);
    },
  };
  try {
    new DiscordGatewaySource(sourceOptions); // checks the options before anything binds
  } catch (err) {
    console.error(`error: ${errorText(err)}`);
    return 2;
  }
  const supervisors: GatewaySupervisor[] = [];
  const newSupervisor = (): GatewaySupervisor => {
    const s = new GatewaySupervisor({
      create: (onError): DiscordGatewaySource =>
        new DiscordGatewaySource({
          ...sourceOptions,
          onError,
          // In a cluster a new publisher RESUMEs the previous one's session from
          // what viewers saw (Discord replays what was missed), else identifies.
          resume: cluster && { sessions: cluster.sessionStore, guilds: () => cluster.snapshots() },
        }),
      warn: (message) => consoleSink({ time: new Date(), level: "warn", message }),
      onFatal: (err) => fail(err),
      onReady: () => {
        const src = s.current as DiscordGatewaySource | undefined;
        if (src && src.guildIds.length === 0) {
          console.error(
            "warning: none of the configured guilds is available to the bot yet; " +
              "check the ids and that the bot was invited to those servers",
          );
        }
        printUrl();
      },

      // A cluster publisher shares its guilds once started: it waits for them (and may bind later).
      startWaitsForReady: flags.redis !== undefined,
    });
    supervisors.push(s);
    // With --redis a publisher term may begin before or after the port is bound.
    if (listening) s.begin();
    return s;
  };
  let listening = false;
  let printed = false;
  const printUrl = () => {
    if (printed) return;
    printed = true;
    console.log(`open d-zone with ?socketURL=${socketUrl(flags.hostname, server.port)}`);
  };
  // Loaded only with --redis, so a single instance never loads the Redis client.
  const cluster: RedisCluster | undefined = flags.redis === undefined
    ? undefined
    : (await loadRedisEntry())
      .redisCluster({
        url: flags.redis.url,
        namespace: flags.redis.namespace,
        leaseMs: flags.redis.leaseMs,
        logLevel,
        logSink: consoleSink,
        source: () => newSupervisor(),
      });
  const single = cluster ? undefined : newSupervisor();
  let server: WebSocketServer;
  try {
    server = new WebSocketServer({
      ...flags.options,
      ...files.options,
      port: flags.port,
      hostname: flags.hostname,
      logLevel,
      source: cluster?.source ?? single,
      broker: cluster?.broker,
    });
  } catch (err) {
    await cluster?.close();
    console.error(`error: ${errorText(err)}`);
    return 2;
  }
  const stopAll = async () => {
    // The gateway first: a cluster publisher still waiting for READY lets go only then.
    await Promise.all(supervisors.map((s) => s.stop()));
    await server.stop();
    await cluster?.close();
  };
  // The port first: a port in use fails here, before anything talks to Discord.
  try {
    await server.start();
  } catch (err) {
    await stopAll();
    console.error(
      `error: cannot listen on ${flags.hostname}:${flags.port}: ${errorText(err)}`,
    );
    return 1;
  }
  listening = true;
  for (const s of supervisors) s.begin();
  // A follower serves what the publisher shares: usable now. A publisher, once its guilds are in.
  if (cluster && cluster.status().role !== "leader") printUrl();

  const outcome = await Promise.race([signalled.then(() => null), fatal]);
  await stopAll();
  if (outcome) {
    console.error(`error: ${outcome.message}`);
    return 1;
  }
  return 0;
}
