/**
 * The public shapes of the OAuth2 validator: its options and the function
 * it returns.
 *
 * @module
 */
import type { DiscordUser } from "../protocol.ts";

/**
 * Options of {@link discordOAuthValidator}. All are optional.
 *
 * @example
 * ```ts
 * import { type DiscordOAuthOptions, discordOAuthValidator } from "@dzone/dback/discord";
 *
 * const options: DiscordOAuthOptions = {
 *   apiBase: "https://discord.com/api/v10",
 *   cacheTtlMs: 120_000,
 *   timeoutMs: 3000,
 *   maxConcurrentLookups: 8,
 *   maxLookupsPerMinute: 300,
 *   // A stand-in for Discord: the token belongs to user 42, a member of guild 7.
 *   fetch: (input) =>
 *     Promise.resolve(Response.json(String(input).includes("/guilds") ? [{ id: "7" }] : { id: "42" })),
 *   onError: (message) => console.warn(message),
 * };
 * const validate = discordOAuthValidator(options);
 * if ((await validate("token", { id: "42", username: "ada" }, "7")) !== true) throw new Error("no");
 * ```
 */
export interface DiscordOAuthOptions {
  /** Base URL of Discord's HTTP API. Default `"https://discord.com/api/v10"`. */
  apiBase?: string;
  /**
   * Decide membership yourself (e.g. from your bot's member cache) instead of
   * asking Discord for the user's guild list (which needs the `guilds` OAuth2
   * scope). Must answer exactly `true` to allow; a throw or a timeout refuses.
   */
  isMember?: (userId: string, serverId: string) => boolean | Promise<boolean>;
  /** How long an "allowed" answer is reused, in ms. Default 60000; 0 disables caching. */
  cacheTtlMs?: number;
  /**
   * How long a definite "refused" answer from Discord (401, id mismatch, not a
   * member) is reused, in ms. Default 10000; 0 disables. Transient failures
   * (network, timeout, 5xx, 429, malformed body) are never cached.
   */
  negativeCacheTtlMs?: number;
  /** Deadline for one whole validation (every request to Discord and `isMember`), in ms. Default 4000, below the server's 5000 ms callback deadline. */
  timeoutMs?: number;
  /** The `fetch` used to reach Discord (inject one for tests or a proxy). Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Most cached answers kept; the oldest is evicted first. Default 10000. */
  maxCacheEntries?: number;
  /**
   * Lookups asking Discord at the same time, for all tokens together. A call
   * that would exceed it is refused at once, without a request. Default 8.
   */
  maxConcurrentLookups?: number;
  /**
   * Lookups started per rolling minute, for all tokens together (each costs
   * Discord one to six requests). A call beyond it is refused at once,
   * without a request. Default 300: a flood of invalid tokens then stays well
   * under Discord's 10,000 invalid requests per 10 minutes, after which
   * Discord bans the IP.
   */
  maxLookupsPerMinute?: number;
  /** Receives one line per failure, for diagnostics. Never contains the token. */
  onError?: (message: string) => void;
}

/**
 * The function {@link discordOAuthValidator} returns; it fits
 * `Callbacks.validateDiscordUser`. Resolves `true` only when Discord confirmed
 * both identity and membership; it never rejects.
 *
 * @example
 * ```ts
 * import { type DiscordUserValidator, discordOAuthValidator } from "@dzone/dback/discord";
 *
 * const validate: DiscordUserValidator = discordOAuthValidator();
 * // A malformed token is refused without asking Discord.
 * const allowed = await validate("not a token", { id: "42", username: "ada" }, "232769614004748288");
 * if (allowed !== false) throw new Error("a malformed token must be refused");
 * ```
 */
export type DiscordUserValidator = (
  token: string,
  user: DiscordUser,
  serverId: string,
) => Promise<boolean>;
