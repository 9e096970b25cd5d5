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
 * ```ts ignore
 * import process from "node:process";
 * import { WebSocketServer } from "@dzone/dback";
 * import { DiscordGatewaySource } from "@dzone/dback/discord";
 *
 * const discord = new DiscordGatewaySource({
 *   token: process.env.DISCORD_TOKEN!,
 *   servers: [{ id: "232769614004748288", alias: "D-World", hideOffline: true }],
 *   onError: (err) => console.error(err.message),
 * });
 * const server = new WebSocketServer({ port: 3000, source: discord });
 * await server.start(); // starts the source; rejects on a bad token
 * // later
 * await server.stop(); // stops the source too
 * ```
 *
 * @module
 */
export { DiscordGatewaySource } from "./_source.ts";
export type { DiscordSourceOptions } from "./options.ts";
export {
  type DiscordConfig,
  DiscordConfigError,
  loadDiscordConfig,
  parseDiscordConfig,
  type ServerConfig,
} from "./config.ts";
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
