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
 * import type { MaybePromise } from "@dzone/dback";
 * const now: MaybePromise<number> = 1;
 * const later: MaybePromise<number> = Promise.resolve(2);
 * if ((await now) + (await later) !== 3) throw new Error("unexpected");
 * ```
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What `staticRequest` may answer: `[contentType, content]`, a full
 * `Response`, or `null`/`undefined` to fall through to the static directory.
 *
 * @example
 * ```ts
 * import type { StaticResult } from "@dzone/dback";
 * const text: StaticResult = ["text/plain", "hi"];
 * const full: StaticResult = new Response("hi", { status: 201 });
 * if (text[1] !== "hi" || full.status !== 201) throw new Error("unexpected");
 * ```
 */
export type StaticResult = [contentType: string, content: string | Uint8Array] | Response;

/**
 * The five hooks of d-back. Every entry is optional; a missing data hook means
 * mock data for it.
 *
 * @example
 * ```ts
 * import type { Callbacks } from "@dzone/dback";
 * const callbacks: Callbacks = {
 *   getServerData: () => ({ "1": { id: "home", name: "Home", default: true } }),
 *   getUserData: async (_serverId) => ({ "7": { uid: "7", username: "ada", status: "online" } }),
 *   getClientId: () => "1234567890",
 * };
 * const users = await callbacks.getUserData!("1");
 * if (users["7"].username !== "ada") throw new Error("unexpected");
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
