/**
 * What the reducer keeps and returns: the {@link SourceState} (served guilds
 * and running member syncs), the {@link Output}s the I/O shell carries out,
 * and the rules it is configured with. No behaviour beyond nonces.
 *
 * @module
 */
import { z } from "zod";
import type { ChatEvent, PresenceEvent } from "../events.ts";
import { describeZodError } from "../_zod.ts";
import type { ResolvedServer } from "./_config.ts";
import { snowflake } from "./_schemas.ts";
import type { GuildState } from "./_state.ts";

/** Something the I/O shell must do after a dispatch. */
export type Output =
  /** Broadcast a presence change. */
  | { kind: "presence"; event: PresenceEvent }
  /** Broadcast a chat message. */
  | { kind: "message"; event: ChatEvent }
  /** Send op 8 for this guild with this nonce. */
  | { kind: "request-members"; guildId: string; nonce: string }
  /** Re-issue the member request of this guild after `afterMs` (Discord rate-limited it). */
  | { kind: "retry-members"; guildId: string; afterMs: number }
  /** A guild's member list is complete. */
  | { kind: "members-complete"; guildId: string }
  /** READY: the ids of the guilds this session serves. */
  | { kind: "ready"; guildIds: string[] }
  /** A served guild's data arrived (GUILD_CREATE). */
  | { kind: "guild-arrived"; guildId: string }
  /** A guild is gone for good (bot removed, or missing from READY): tell its viewers. */
  | { kind: "guild-gone"; guildId: string }
  /** A member left a guild (cached logins must be forgotten). */
  | { kind: "member-left"; guildId: string; userId: string }
  /** Someone sent the info command in this channel. */
  | { kind: "info-command"; guildId: string; channelId: string }
  /** A line for the log. */
  | { kind: "log"; level: "debug" | "info" | "warn"; message: string };

/** How the reducer decides what to serve and how. */
export interface ReducerConfig {
  /** Whether this guild is served at all. */
  serves(guildId: string): boolean;
  /** The settings of a served guild. */
  settings(guildId: string): ResolvedServer;
  /** Message text that triggers the info reply (compared case-insensitively), if any. */
  infoCommand?: string;
}

/** A member list being loaded into a shadow copy. */
export interface MemberSync {
  /** The guild as it will be once the list is complete. */
  shadow: GuildState;
  /** Nonce of the request whose chunks count; a new request gets a new one. */
  nonce: string;
  /** Chunk indexes received for `nonce`. */
  chunks: Set<number>;
}

/** Everything the reducer keeps: served guilds and running member syncs. */
export class SourceState {
  /** Served guilds by id, as viewers see them. */
  readonly guilds: Map<string, GuildState> = new Map();
  /** Member lists still loading, by guild id. */
  readonly syncs: Map<string, MemberSync> = new Map();
  /** The rules. */
  readonly config: ReducerConfig;
  #nonces = 0;

  /** An empty state. */
  constructor(config: ReducerConfig) {
    this.config = config;
  }

  /** A fresh nonce for op 8 (Discord allows 32 bytes). */
  nextNonce(): string {
    return `dz${(++this.#nonces).toString(36)}`;
  }
}

/** A channel or thread, as far as filters by name need it. */
export const channelSchema = z.looseObject({
  id: snowflake,
  guild_id: snowflake.optional(),
  name: z.string().nullable().optional(),
  parent_id: snowflake.nullable().optional(),
});

/** Log a dispatch that did not parse. */
export function bad(t: string, error: z.ZodError, out: Output[]): void {
  out.push({
    kind: "log",
    level: "warn",
    message: `ignored a malformed ${t}: ${describeZodError(error)}`,
  });
}
