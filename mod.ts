/**
 * dback: the d-zone backend for Deno. One `Deno.serve` port speaks the d-back
 * WebSocket protocol to the d-zone web client, serves static files and
 * `/api/version`, and fans out presence and chat to every viewer of a
 * Discord server.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 *
 * const server = new WebSocketServer({
 *   port: 3000,
 *   callbacks: {
 *     getServerData: () => ({
 *       "232769614004748288": { id: "dworld", name: "D-World", default: true },
 *     }),
 *     getUserData: () => ({
 *       "42": { uid: "42", username: "ada", status: "online", roleColor: "#ff6b6b" },
 *     }),
 *   },
 * });
 * await server.start();
 * server.broadcastPresence({ server: "232769614004748288", uid: "42", status: "idle" });
 * await server.stop();
 * ```
 *
 * @module
 */
export { DEFAULT_STATIC_DIR, type ServerOptions, WebSocketServer } from "./src/server.ts";
export type { CallbackName, Callbacks, MaybePromise, StaticResult } from "./src/callbacks.ts";
export {
  type ChatEvent,
  type ClientIdEvent,
  type ConnectRequest,
  type DiscordUser,
  ERRORS,
  parseClientFrame,
  type ParsedFrame,
  type PresenceEvent,
  type PublicServerEntry,
  type ServerEntry,
  type ServerMap,
  type Status,
  STATUSES,
  type UserEntry,
  type UserMap,
} from "./src/protocol.ts";
export {
  MOCK_CHANNEL,
  MOCK_MESSAGES,
  MockDataProvider,
  type MockOptions,
  type MockSink,
} from "./src/mock.ts";
export { constantTimeEqual } from "./src/auth.ts";
export * from "./src/discord/mod.ts";
export {
  type DiscordOAuthOptions,
  discordOAuthValidator,
  type DiscordUserValidator,
} from "./src/discord/oauth.ts";
export { formatLogRecord, type LogLevel, type LogRecord, type LogSink } from "./src/log.ts";
export { type CallbackStats, Metrics } from "./src/metrics.ts";
export type { DataSource, EventSink } from "./src/source.ts";
export type { Broker, Deliver, ServerEvent } from "./src/broker.ts";
export { VERSION } from "./src/version.ts";
