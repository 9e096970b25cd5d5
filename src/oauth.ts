/**
 * Moved to `src/discord/oauth.ts`, next to the rest of the Discord code and
 * its one REST helper. This re-export keeps old import paths working (the
 * gateway source still imports `../oauth.ts`); nothing new belongs here.
 *
 * @module
 */
export {
  type DiscordOAuthOptions,
  discordOAuthValidator,
  type DiscordUser,
  type DiscordUserValidator,
} from "./discord/oauth.ts";
