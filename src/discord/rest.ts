/**
 * The two Discord REST calls the gateway source makes, over `fetch`:
 * `GET /gateway/bot` (where to connect) and `GET /users/@me` with an OAuth2
 * access token (who a d-zone viewer is, for passworded servers).
 *
 * @module
 */
import { gatewayBotSchema } from "./schemas.ts";

/** The public Discord API base for v10. */
export const DEFAULT_API_BASE = "https://discord.com/api/v10";

/** Where to connect when `GET /gateway/bot` is not available. */
export const DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg";

/** Thrown when Discord answers with an HTTP error. */
export class DiscordHttpError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** Create the error. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "DiscordHttpError";
    this.status = status;
  }
}

/** A `fetch`-compatible function. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** GET `url` as JSON with a deadline, always consuming the body. */
export async function getJson(
  fetcher: FetchLike,
  url: string,
  authorization: string,
  timeoutMs: number,
): Promise<unknown> {
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new Error(`no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    const res = await fetcher(url, {
      headers: {
        authorization,
        accept: "application/json",
        "user-agent": "DiscordBot (https://github.com/d-zone-org, 0.1) dback",
      },
      signal: ctl.signal,
    });
    const text = await res.text();
    if (!res.ok) {
      throw new DiscordHttpError(res.status, `GET ${url} answered HTTP ${res.status}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`GET ${url} answered invalid JSON`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ask `GET {apiBase}/gateway/bot` where to connect. Throws a
 * {@link DiscordHttpError} (status 401 means the token is wrong) or an
 * `Error` for network and shape problems.
 */
export async function fetchGatewayUrl(
  fetcher: FetchLike,
  apiBase: string,
  token: string,
  timeoutMs = 10_000,
): Promise<string> {
  const body = await getJson(
    fetcher,
    `${trimSlash(apiBase)}/gateway/bot`,
    `Bot ${token}`,
    timeoutMs,
  );
  const parsed = gatewayBotSchema.safeParse(body);
  if (!parsed.success) throw new Error("GET /gateway/bot answered without a url");
  return parsed.data.url;
}

/** Build the WebSocket URL for Gateway v10 with JSON encoding from a base URL. */
export function gatewayWsUrl(base: string): string {
  const url = new URL(base);
  url.searchParams.set("v", "10");
  url.searchParams.set("encoding", "json");
  url.searchParams.delete("compress");
  return url.toString();
}

function trimSlash(s: string): string {
  return s.replace(/\/+$/, "");
}
