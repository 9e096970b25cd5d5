/**
 * A Discord Gateway data source for dback: serve real Discord guilds to the
 * d-zone client with nothing but a bot token.
 *
 * The bot needs the privileged intents SERVER MEMBERS, PRESENCE and MESSAGE
 * CONTENT switched on in the Discord developer portal (your application →
 * Bot → Privileged Gateway Intents); without them Discord closes the
 * connection with 4014 and {@link DiscordGatewaySource.start} rejects.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 * import { DiscordGatewaySource } from "@dzone/dback/discord";
 *
 * const errors: string[] = [];
 * const discord = new DiscordGatewaySource({
 *   token: "your-bot-token", // e.g. process.env.DISCORD_TOKEN
 *   servers: [{ id: "232769614004748288", alias: "D-World", hideOffline: true }],
 *   onError: (err) => errors.push(err.message),
 *   // Only for this example: a gateway that is not there, so start() fails at once.
 *   gatewayUrl: "ws://127.0.0.1:9",
 *   timing: { maxStartFailures: 1 },
 *   logLevel: "silent",
 * });
 * const server = new WebSocketServer({ port: 0, source: discord, logLevel: "silent" });
 * const started = await server.start().then(() => true, () => false); // starts the source first
 * await server.stop(); // stops the source too
 * if (started || errors.length !== 1) throw new Error(`started ${started}, errors ${errors}`);
 * ```
 *
 * @module
 */
export { DiscordGatewaySource } from "./_source.ts";
export type { DiscordSourceOptions } from "./_options.ts";
export {
  type DiscordConfig,
  DiscordConfigError,
  loadDiscordConfig,
  parseDiscordConfig,
  type ServerConfig,
} from "./_config.ts";
export {
  DEFAULT_INTENTS,
  DiscordGatewayError,
  type GatewaySession,
  type GatewaySessionStore,
  type GatewayTiming,
  Intents,
} from "./_gateway_types.ts";
export type { DiscordResume, GuildSnapshot } from "./_resume.ts";
export { DEFAULT_API_BASE, DEFAULT_GATEWAY_URL, type FetchLike } from "./_rest.ts";
// Also exported by the package root (it is a server hook); here so Discord code needs one import.
export {
  type DiscordOAuthOptions,
  discordOAuthValidator,
  type DiscordUserValidator,
} from "./_oauth.ts";
// The package types this module's API mentions, so it documents completely on its own.
export type { Callbacks, MaybePromise, StaticResult } from "../callbacks.ts";
export type { DataSource, EventSink, SourceContext } from "../source.ts";
export type { ChatEvent, PresenceEvent, ServerEvent } from "../events.ts";
export type {
  DiscordUser,
  ServerEntry,
  ServerMap,
  Status,
  UserEntry,
  UserMap,
} from "../protocol.ts";
export type { LogLevel, LogRecord, LogSink } from "../log.ts";
