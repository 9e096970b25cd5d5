/**
 * The typed callback map (the five hooks of d-back) and the one place that
 * calls them: with a deadline, with the result checked by zod, and with every
 * failure turned into a log line naming the callback and a value the caller
 * can answer the client with.
 *
 * @module
 */
import { z } from "zod";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { describeZodError, type DiscordUser, type ServerMap, type UserMap } from "./protocol.ts";

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

/**
 * The names of the hooks.
 *
 * @example
 * ```ts
 * import type { CallbackName } from "./callbacks.ts";
 * const names: CallbackName[] = ["getServerData", "getUserData", "staticRequest"];
 * if (names.length !== 3) throw new Error("unexpected");
 * ```
 */
export type CallbackName = keyof Callbacks;

/** Outcome of one guarded callback call. */
export type Guarded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Calls hooks with a deadline and checks what they return. */
export class CallbackRunner {
  #timeoutMs: number;
  #log: Logger;
  #metrics: Metrics;

  /** `timeoutMs` is the deadline for each call. */
  constructor(timeoutMs: number, log: Logger, metrics: Metrics) {
    this.#timeoutMs = timeoutMs;
    this.#log = log;
    this.#metrics = metrics;
  }

  /**
   * Run `call`, wait at most the deadline, and parse its result with `schema`.
   * Never throws; a failure is logged once with the callback's name.
   */
  async run<T>(
    name: CallbackName,
    call: () => MaybePromise<unknown>,
    schema: z.ZodType<T>,
    conn?: string,
  ): Promise<Guarded<T>> {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let reason: string;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${this.#timeoutMs} ms`)),
          this.#timeoutMs,
        );
      });
      const value = await Promise.race([Promise.resolve().then(call), deadline]);
      const parsed = schema.safeParse(value);
      if (parsed.success) {
        this.#metrics.observeCallback(name, (performance.now() - started) / 1000, false);
        return { ok: true, value: parsed.data };
      }
      reason = `returned the wrong shape (${describeZodError(parsed.error)})`;
    } catch (err) {
      reason = err instanceof Error && err.message.startsWith("no answer within")
        ? `timed out: ${err.message}`
        : `threw: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      clearTimeout(timer);
    }
    this.#metrics.observeCallback(name, (performance.now() - started) / 1000, true);
    this.#log.error(`callback ${name} ${reason}`, conn);
    return { ok: false, reason };
  }
}

/** Schema for `validateDiscordUser` results: strictly a boolean. */
export const validationResultSchema: z.ZodType<boolean> = z.boolean();

/** Schema for `getClientId` results. */
export const clientIdResultSchema: z.ZodType<string | undefined> = z
  .union([z.string().min(1), z.number().int().nonnegative(), z.null(), z.undefined()])
  .transform((v) => (v === null || v === undefined ? undefined : String(v)));

/** Schema for `staticRequest` results. */
export const staticResultSchema: z.ZodType<StaticResult | null | undefined> = z.union([
  z.tuple([z.string().min(1), z.union([z.string(), z.instanceof(Uint8Array)])]),
  z.instanceof(Response),
  z.null(),
  z.undefined(),
]);
