/**
 * dback: the d-zone backend. One port speaks the d-back WebSocket protocol
 * to the d-zone web client, serves static files, `/api/version`, `/healthz`
 * and `/metrics`, and fans out presence and chat to every viewer of a
 * Discord server.
 *
 * @example
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 *
 * await using server = new WebSocketServer({
 *   port: 0,
 *   hostname: "127.0.0.1",
 *   logLevel: "warn",
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
 * const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
 * const first = await new Promise<string>((resolve) => ws.onmessage = (e) => resolve(e.data));
 * ws.close();
 * if (JSON.parse(first).type !== "server-list") throw new Error("unexpected first frame");
 * ```
 *
 * @module
 */
export { WebSocketServer } from "./src/server.ts";
export {
  DEFAULT_STATIC_DIR,
  type ServerOptions,
  type StartOptions,
  type TransportName,
} from "./src/options.ts";
export type { Callbacks, MaybePromise, StaticResult } from "./src/callbacks.ts";
export type {
  ChatEvent,
  ClientIdEvent,
  EventPayloads,
  PresenceEvent,
  ServerEvent,
  ServerGoneEvent,
} from "./src/events.ts";
export {
  type DiscordUser,
  ERRORS,
  type ServerEntry,
  type ServerMap,
  type Status,
  type UserEntry,
  type UserMap,
} from "./src/protocol.ts";
export type { DataSource, EventSink, SourceContext } from "./src/source.ts";
export type { MountedWebSocket } from "./src/transport/types.ts";
export type { Broker, Deliver, EventOrigin } from "./src/broker.ts";
export { type MockOptions, MockSource } from "./src/sources/mock.ts";
export {
  type DiscordOAuthOptions,
  discordOAuthValidator,
  type DiscordUserValidator,
} from "./src/discord/_oauth.ts";
export { formatLogRecord, type LogLevel, type LogRecord, type LogSink } from "./src/log.ts";
export type { CallbackStats, MetricsSnapshot } from "./src/metrics.ts";
export { VERSION } from "./src/version.ts";
