/**
 * Where a gateway client connects: `GET {apiBase}/gateway/bot` (with its
 * retries), and what a failure of that request means — a fatal error for a
 * bad token or a non-Discord API base, Discord's public gateway otherwise.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import {
  DEFAULT_GATEWAY_URL,
  DiscordHttpError,
  fetchGatewayBot,
  type FetchLike,
  type GatewayBotInfo,
  isDiscordApiBase,
} from "./_rest.ts";
import { DiscordGatewayError, FATAL_CLOSE_CODES } from "./_gateway_types.ts";

/** What {@link resolveGateway} needs. */
export interface ResolveGatewayOptions {
  /** Bot token. */
  token: string;
  /** REST API base. */
  apiBase: string;
  /** `fetch` for the request. */
  fetch: FetchLike;
  /** Attempts, back-off and deadline of the request. */
  timing: { restAttempts: number; restRetryBaseMs: number; restTimeoutMs: number };
  /** Cancels the request (the client stopped). */
  signal: AbortSignal;
  /** Whether the client still runs (a failure after a stop is not an error). */
  running: () => boolean;
  /** Log lines. */
  log: (level: "debug" | "warn", message: string) => void;
}

/**
 * The gateway URL, with `GET /gateway/bot`'s answer when there was one.
 * Throws a {@link DiscordGatewayError} when retrying cannot help.
 *
 * @example
 * ```ts
 * import { resolveGateway } from "./_gateway_url.ts";
 *
 * const found = await resolveGateway({
 *   token: "t",
 *   apiBase: "http://127.0.0.1:9/api/v10",
 *   fetch: () => Promise.resolve(Response.json({ url: "wss://gw.example", shards: 1 })),
 *   timing: { restAttempts: 1, restRetryBaseMs: 1, restTimeoutMs: 1000 },
 *   signal: new AbortController().signal,
 *   running: () => true,
 *   log: () => {},
 * });
 * if (found.url !== "wss://gw.example" || found.info?.shards !== 1) throw new Error(found.url);
 * ```
 */
export async function resolveGateway(
  o: ResolveGatewayOptions,
): Promise<{ url: string; info?: GatewayBotInfo }> {
  let info: GatewayBotInfo;
  try {
    info = await fetchGatewayBot(o.fetch, o.apiBase, o.token, {
      attempts: o.timing.restAttempts,
      retryBaseMs: o.timing.restRetryBaseMs,
      timeoutMs: o.timing.restTimeoutMs,
      signal: o.signal,
      onRetry: (failure, wait) =>
        o.log("warn", `GET /gateway/bot: ${failure}; retrying in ${wait} ms`),
    });
  } catch (err) {
    if (err instanceof DiscordHttpError && err.status === 401) {
      throw new DiscordGatewayError(
        `Discord rejected the bot token (GET /gateway/bot answered HTTP 401). ${
          FATAL_CLOSE_CODES[4004]
        }`,
        4004,
      );
    }
    if (!o.running()) return { url: DEFAULT_GATEWAY_URL };
    if (!isDiscordApiBase(o.apiBase)) {
      // Never send the token to Discord's real gateway when the API base is elsewhere.
      throw new DiscordGatewayError(
        `cannot find the gateway: ${errorText(err)}. The API base ${o.apiBase} is not ` +
          "Discord's, so there is no fallback; fix --api-base or set --gateway-url.",
        err instanceof DiscordHttpError ? err.status : undefined,
      );
    }
    o.log("warn", `${errorText(err)}; using ${DEFAULT_GATEWAY_URL}`);
    return { url: DEFAULT_GATEWAY_URL };
  }
  const l = info.sessionStartLimit;
  o.log(
    "debug",
    `gateway URL ${info.url}; recommended shards ${info.shards ?? "?"}` +
      (l ? `; IDENTIFYs left ${l.remaining}/${l.total}, max_concurrency ${l.maxConcurrency}` : ""),
  );
  return { url: info.url, info };
}
