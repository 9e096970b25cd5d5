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
 * import { DiscordGatewaySource, WebSocketServer } from "@dzone/dback";
 *
 * const source = new DiscordGatewaySource({
 *   token: Deno.env.get("DISCORD_TOKEN")!,
 *   guildIds: ["232769614004748288"],
 *   onError: (err) => console.error(err.message),
 * });
 * const server = new WebSocketServer({ port: 3000, callbacks: source.callbacks() });
 * source.attach(server);
 * await source.start();
 * await server.start();
 * // later
 * await source.close();
 * await server.stop();
 * ```
 *
 * @module
 */
export {
  type DiscordEventSink,
  DiscordGatewaySource,
  type DiscordSourceOptions,
} from "./source.ts";
export {
  DEFAULT_INTENTS,
  DiscordGatewayError,
  FATAL_CLOSE_CODES,
  type GatewaySession,
  type GatewaySessionStore,
  type GatewayTiming,
  Intents,
} from "./gateway.ts";
export { DEFAULT_API_BASE, DEFAULT_GATEWAY_URL, type FetchLike } from "./rest.ts";
// The package types this module's API mentions, so it documents completely on its own.
export type { Callbacks, MaybePromise, StaticResult } from "../callbacks.ts";
export type {
  ChatEvent,
  DiscordUser,
  PresenceEvent,
  ServerEntry,
  ServerMap,
  Status,
  UserEntry,
  UserMap,
} from "../protocol.ts";
export type { LogLevel, LogRecord, LogSink } from "../log.ts";
