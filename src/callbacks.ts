/**
 * The typed callback map: the five hooks of d-back. They are called by
 * `_callback_runner.ts` (with a deadline and a zod check of every result).
 *
 * @module
 */
import type { DiscordUser, ServerMap, UserMap } from "./protocol.ts";

/**
 * A value or a promise of it: every callback may be sync or async.
 *
 * @example
 * ```ts
 * import { type MaybePromise, type StaticResult, WebSocketServer } from "@dzone/dback";
 * // The same hook, answering now or later: the server waits for either.
 * for (const later of [false, true]) {
 *   const answer: StaticResult = ["text/plain", "hi"];
 *   const staticRequest = (): MaybePromise<StaticResult> => later ? Promise.resolve(answer) : answer;
 *   await using server = new WebSocketServer({
 *     staticDir: false,
 *     logLevel: "silent",
 *     callbacks: { staticRequest },
 *   });
 *   await server.start({ listen: false });
 *   const res = await server.fetch(new Request("http://dzone.local/x"));
 *   if ((await res.text()) !== "hi") throw new Error(`later: ${later}`);
 * }
 * ```
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What `staticRequest` may answer: `[contentType, content]`, a full
 * `Response`, or `null`/`undefined` to fall through to the static directory.
 *
 * @example
 * ```ts
 * import { type StaticResult, WebSocketServer } from "@dzone/dback";
 * const answers: Record<string, StaticResult | null> = {
 *   "/text": ["text/plain", "hi"],
 *   "/full": new Response("made", { status: 201 }),
 *   "/none": null, // falls through to the static directory (disabled here: 404)
 * };
 * await using server = new WebSocketServer({
 *   staticDir: false,
 *   logLevel: "silent",
 *   callbacks: { staticRequest: (path) => answers[path] },
 * });
 * await server.start({ listen: false });
 * const got = await Promise.all(Object.keys(answers).map(async (path) => {
 *   const res = await server.fetch(new Request(`http://dzone.local${path}`));
 *   return `${res.status} ${res.headers.get("content-type")?.split(";")[0]} ${await res.text()}`;
 * }));
 * if (got[0] !== "200 text/plain hi" || !got[1].startsWith("201") || !got[2].startsWith("404")) {
 *   throw new Error(got.join(" | "));
 * }
 * ```
 */
export type StaticResult = [contentType: string, content: string | Uint8Array] | Response;

/**
 * The five hooks of d-back. Every entry is optional; a missing data hook means
 * mock data for it.
 *
 * @example
 * ```ts
 * import { type Callbacks, WebSocketServer } from "@dzone/dback";
 * const asked: string[] = [];
 * const callbacks: Callbacks = {
 *   getServerData: () => ({ "1": { id: "home", name: "Home", default: true } }),
 *   getUserData: async (serverId) => {
 *     asked.push(serverId);
 *     return { "7": { uid: "7", username: "ada", status: "online" } };
 *   },
 *   getClientId: () => "1234567890",
 * };
 * await using server = new WebSocketServer({
 *   port: 0,
 *   hostname: "127.0.0.1",
 *   logLevel: "silent",
 *   callbacks,
 * });
 * await server.start();
 * const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
 * const join = await new Promise<{ type: string; data: Record<string, unknown> }>((resolve) => {
 *   ws.onmessage = (e) => {
 *     const f = JSON.parse(e.data);
 *     if (f.type === "server-list") ws.send('{"type":"connect","data":{}}');
 *     else resolve(f);
 *   };
 * });
 * ws.close();
 * if (join.type !== "server-join" || join.data.clientId !== "1234567890") throw new Error(join.type);
 * if (asked.join() !== "1") throw new Error("the hook is asked by Discord id");
 * ```
 */
export interface Callbacks {
  /** The server map (Discord id → entry). Asked on every connection and join. */
  getServerData?: (serverId?: string) => MaybePromise<ServerMap>;
  /** The user map of one Discord server, asked on join. */
  getUserData?: (serverId: string) => MaybePromise<UserMap>;
  /** Answer an HTTP path (query string removed) before the static directory is tried. */
  staticRequest?: (path: string) => MaybePromise<StaticResult | null | undefined>;
  /** Decide whether a Discord OAuth2 token and claimed user may join a passworded server. */
  validateDiscordUser?: (
    token: string,
    user: DiscordUser,
    serverId: string,
  ) => MaybePromise<boolean>;
  /** The OAuth2 application id for a server; `null`/`undefined` when there is none. */
  getClientId?: (serverId: string) => MaybePromise<string | null | undefined>;
}
