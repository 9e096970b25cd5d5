/**
 * {@link DiscordGatewaySource}: real Discord guilds as d-zone servers. It keeps
 * each served guild's members, presences and roles current from the gateway,
 * answers the server's data callbacks from that state, and turns every change
 * a viewer would see into a `broadcastPresence` / `broadcastMessage` call.
 *
 * @module
 */
import { z } from "zod";
import type { Callbacks } from "../callbacks.ts";
import { consoleSink, Logger, type LogLevel, type LogSink } from "../log.ts";
import {
  type ChatEvent,
  describeZodError,
  type DiscordUser,
  type PresenceEvent,
  type ServerMap,
  type UserEntry,
  type UserMap,
} from "../protocol.ts";
import {
  DEFAULT_INTENTS,
  type DiscordGatewayError,
  GatewayClient,
  type GatewayTiming,
} from "./gateway.ts";
import { discordOAuthValidator, type DiscordUserValidator } from "../oauth.ts";
import { DEFAULT_API_BASE, type FetchLike } from "./rest.ts";
import {
  guildCreateSchema,
  guildDeleteSchema,
  guildUpdateSchema,
  memberEventSchema,
  memberRemoveSchema,
  memberSchema,
  membersChunkSchema,
  messageCreateSchema,
  Op,
  parseEach,
  presenceSchema,
  presenceUpdateSchema,
  rateLimitedSchema,
  readySchema,
  roleDeleteSchema,
  roleEventSchema,
  roleSchema,
  snowflake,
} from "./schemas.ts";
import {
  diffEntry,
  diffSnapshots,
  type EntryChange,
  GuildState,
  memberRecord,
  toStatus,
} from "./state.ts";

/**
 * Where the source sends what viewers should see. A `WebSocketServer` fits
 * (only its public broadcast methods are used).
 */
export interface DiscordEventSink {
  /** A presence change, a new user (with `username`) or a removal (`delete: true`). */
  broadcastPresence(event: PresenceEvent): unknown;
  /** A chat message. */
  broadcastMessage(event: ChatEvent): unknown;
}

/** Options of {@link DiscordGatewaySource}. */
export interface DiscordSourceOptions {
  /** Bot token from the developer portal (without the `Bot ` prefix). Required. */
  token: string;
  /**
   * Guild ids to serve, in the order of the server list; the first is the
   * default. Default: every guild the bot is in, in the order they arrive.
   */
  guildIds?: string[];
  /** Only messages from these channel (or thread) ids are shown. Default: all channels. */
  channelIds?: string[];
  /** Short id per guild id for the server list (default: the guild id itself). */
  slugs?: Record<string, string>;
  /** OAuth2 application id; enables `getClientId` (needed by passworded servers). */
  clientId?: string;
  /** Mark every served guild passworded: viewers must log in with Discord and be members. */
  passworded?: boolean;
  /** Whether offline members are in the user map and stay on screen. Default `true`. */
  includeOffline?: boolean;
  /** Fixed gateway URL (e.g. a test server). Default: `GET {apiBase}/gateway/bot`, else `wss://gateway.discord.gg`. */
  gatewayUrl?: string;
  /** REST API base. Default `https://discord.com/api/v10`. */
  apiBase?: string;
  /** Intents to identify with. Default {@link DEFAULT_INTENTS}. */
  intents?: number;
  /** How long `start()` waits for the served guilds to arrive after READY, ms. Default 15000. */
  guildTimeoutMs?: number;
  /** `fetch` used for REST calls. Default: the global `fetch`. */
  fetch?: FetchLike;
  /** Lowest level logged. Default `"info"`. */
  logLevel?: LogLevel;
  /** Where log lines go. Default: the console. */
  logSink?: LogSink;
  /** Called once when the source stops for good on a fatal error (bad token, disallowed intents…). */
  onError?: (error: DiscordGatewayError) => void;
  /** Where broadcasts go; same as calling {@link DiscordGatewaySource.attach}. */
  sink?: DiscordEventSink;
  /** Gateway timing knobs (tests shorten them). */
  timing?: GatewayTiming;
}

const TAG = "discord";

const optionsSchema = z.object({
  token: z.string().trim().min(1, "token is required"),
  guildIds: z.array(snowflake).optional(),
  channelIds: z.array(snowflake).optional(),
  slugs: z.record(snowflake, z.string().min(1).max(200)).optional(),
  clientId: z.string().regex(/^\d{1,25}$/, "clientId must be a snowflake").optional(),
  passworded: z.boolean().default(false),
  includeOffline: z.boolean().default(true),
  gatewayUrl: z.url({ protocol: /^wss?$/, error: "gatewayUrl must be a ws:// or wss:// URL" })
    .optional(),
  apiBase: z.url({ protocol: /^https?$/, error: "apiBase must be an http:// or https:// URL" })
    .default(DEFAULT_API_BASE),
  intents: z.number().int().nonnegative().default(DEFAULT_INTENTS),
  guildTimeoutMs: z.number().int().nonnegative().default(15_000),
  logLevel: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
});

/**
 * A d-zone data source backed by the Discord Gateway (v10, JSON) and REST API.
 *
 * Needs a bot token and the privileged intents SERVER MEMBERS, PRESENCE and
 * MESSAGE CONTENT (see {@link Intents}). Each served guild becomes a d-zone
 * server keyed by its guild id; its members become actors named by their
 * nickname, global name or username and coloured by their highest coloured
 * role. Presence, member and role changes become `presence` frames and
 * messages from people (not bots or webhooks) become `message` frames.
 *
 * @example
 * ```ts ignore
 * import { DiscordGatewaySource, WebSocketServer } from "@dzone/dback";
 *
 * const source = new DiscordGatewaySource({
 *   token: Deno.env.get("DISCORD_TOKEN")!,
 *   guildIds: ["232769614004748288"],
 * });
 * const server = new WebSocketServer({ port: 3000, callbacks: source.callbacks() });
 * source.attach(server);
 * await source.start(); // rejects on a bad token or disallowed intents
 * await server.start();
 * ```
 */
export class DiscordGatewaySource {
  #o: z.infer<typeof optionsSchema>;
  #fetch: FetchLike;
  #validator: DiscordUserValidator | undefined;
  #log: Logger;
  #onError?: (error: DiscordGatewayError) => void;
  #sink: DiscordEventSink | undefined;
  #gateway: GatewayClient;
  #guilds = new Map<string, GuildState>();
  #served: Set<string> | null;
  #channels: Set<string> | null;
  #slugs: Record<string, string>;
  #ready: PromiseWithResolvers<void> | undefined;
  #pendingGuilds: Set<string> | null = null;
  #guildTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  #error: DiscordGatewayError | undefined;
  #state: "idle" | "starting" | "ready" | "closed" | "failed" = "idle";

  /** Create a source; nothing connects until {@link DiscordGatewaySource.start}. Throws a `TypeError` on invalid options. */
  constructor(options: DiscordSourceOptions) {
    const { fetch: fetcher, logSink, onError, sink, timing, ...rest } = options;
    const parsed = optionsSchema.safeParse(rest);
    if (!parsed.success) {
      throw new TypeError(
        `Invalid DiscordGatewaySource options: ${describeZodError(parsed.error)}`,
      );
    }
    this.#o = parsed.data;
    const slugs = parsed.data.slugs ?? {};
    const taken = new Set<string>();
    for (const slug of Object.values(slugs)) {
      if (taken.has(slug)) {
        throw new TypeError(`Invalid DiscordGatewaySource options: slug "${slug}" is used twice`);
      }
      taken.add(slug);
    }
    this.#slugs = slugs;
    this.#fetch = fetcher ?? ((input, init) => fetch(input, init));
    this.#log = new Logger(parsed.data.logLevel, logSink ?? consoleSink);
    this.#onError = onError;
    this.#sink = sink;
    this.#served = parsed.data.guildIds ? new Set(parsed.data.guildIds) : null;
    this.#channels = parsed.data.channelIds ? new Set(parsed.data.channelIds) : null;
    this.#gateway = new GatewayClient({
      token: parsed.data.token,
      intents: parsed.data.intents,
      gatewayUrl: parsed.data.gatewayUrl,
      apiBase: parsed.data.apiBase,
      fetch: this.#fetch,
      log: this.#log,
      timing,
      onDispatch: (t, d) => this.#dispatch(t, d),
      onFatal: (err) => this.#fatal(err),
    });
  }

  /** The fatal error that stopped the source, if any. */
  get error(): DiscordGatewayError | undefined {
    return this.#error;
  }

  /** Ids of the served guilds whose state has arrived, in server-list order. */
  get guildIds(): string[] {
    return this.#ordered().map((g) => g.id);
  }

  /** Whether READY arrived and the source has not stopped. */
  get ready(): boolean {
    return this.#state === "ready";
  }

  /** Send presence and message broadcasts to `sink` (typically a `WebSocketServer`). */
  attach(sink: DiscordEventSink): this {
    this.#sink = sink;
    return this;
  }

  /** Stop sending broadcasts. */
  detach(): this {
    this.#sink = undefined;
    return this;
  }

  /**
   * Connect. Resolves once the session is READY and every served guild the
   * bot is in has arrived (or `guildTimeoutMs` passed). Rejects with a
   * {@link DiscordGatewayError} on a fatal failure (bad token, disallowed
   * intents, unreachable gateway) and when closed before that.
   */
  start(): Promise<void> {
    if (this.#ready) return this.#ready.promise;
    this.#ready = Promise.withResolvers<void>();
    this.#ready.promise.catch(() => {}); // the caller gets the rejection; do not report it twice
    this.#state = "starting";
    this.#gateway.connect();
    return this.#ready.promise;
  }

  /** Disconnect for good: stops heartbeats, timers and the socket. The last known state stays readable. */
  async close(): Promise<void> {
    if (this.#state !== "failed") this.#state = "closed";
    clearTimeout(this.#guildTimer);
    this.#guildTimer = undefined;
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    this.#ready?.reject(new Error("DiscordGatewaySource closed before it was ready"));
    await this.#gateway.close();
  }

  /**
   * The hooks for a `WebSocketServer`: `getServerData`, `getUserData`,
   * and `getClientId` when a client id is configured, `validateDiscordUser`
   * when `passworded` is set.
   */
  callbacks(): Callbacks {
    const cb: Callbacks = {
      getServerData: () => this.getServerData(),
      getUserData: (id) => this.getUserData(id),
    };
    if (this.#o.clientId !== undefined) cb.getClientId = (id) => this.getClientId(id);
    if (this.#o.passworded) {
      cb.validateDiscordUser = (token, user, id) => this.validateDiscordUser(token, user, id);
    }
    return cb;
  }

  /** The server map of the served guilds that have arrived; the first is the default. */
  getServerData(): ServerMap {
    const out: ServerMap = {};
    let first = true;
    for (const g of this.#ordered()) {
      out[g.id] = {
        id: this.#slugs[g.id] ?? g.id,
        name: g.name,
        default: first,
        passworded: this.#o.passworded,
      };
      first = false;
    }
    return out;
  }

  /** The user map of one served guild. Throws for a guild that is not (yet) available. */
  getUserData(guildId: string): UserMap {
    const g = this.#guilds.get(guildId);
    if (!g) throw new Error(`guild ${guildId} is not available`);
    return g.userMap();
  }

  /** The configured OAuth2 client id for a served guild. */
  getClientId(guildId: string): string | undefined {
    return this.#guilds.has(guildId) ? this.#o.clientId : undefined;
  }

  /**
   * Whether an OAuth2 access token belongs to `user` (asked of
   * `GET {apiBase}/users/@me`) and that user is a member of the guild.
   */
  validateDiscordUser(token: string, user: DiscordUser, guildId: string): Promise<boolean> {
    if (!this.#guilds.has(guildId)) return Promise.resolve(false);
    // The shared validator brings caching, 429 back-off and fail-closed timeouts;
    // membership comes from the guild state this source already keeps.
    this.#validator ??= discordOAuthValidator({
      apiBase: this.#o.apiBase,
      fetch: (input, init) => this.#fetch(input instanceof Request ? input.url : input, init),
      isMember: (userId, id) => this.#guilds.get(id)?.members.has(userId) ?? false,
    });
    return this.#validator(token, user, guildId);
  }

  // ---- internals ----

  #ordered(): GuildState[] {
    if (!this.#served) return [...this.#guilds.values()];
    const out: GuildState[] = [];
    for (const id of this.#served) {
      const g = this.#guilds.get(id);
      if (g) out.push(g);
    }
    return out;
  }

  #serves(guildId: string): boolean {
    return this.#served === null || this.#served.has(guildId);
  }

  #fatal(err: DiscordGatewayError): void {
    this.#error = err;
    this.#state = "failed";
    clearTimeout(this.#guildTimer);
    this.#guildTimer = undefined;
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    this.#ready?.reject(err);
    try {
      this.#onError?.(err);
    } catch (e) {
      this.#log.error(`onError threw: ${e instanceof Error ? e.message : String(e)}`, TAG);
    }
  }

  #resolveReady(): void {
    clearTimeout(this.#guildTimer);
    this.#guildTimer = undefined;
    this.#pendingGuilds = null;
    if (this.#state === "starting") this.#state = "ready";
    this.#ready?.resolve();
  }

  #dispatch(t: string, d: unknown): void {
    switch (t) {
      case "READY":
        return this.#onReady(d);
      case "GUILD_CREATE":
        return this.#onGuildCreate(d);
      case "GUILD_UPDATE":
        return this.#onGuildUpdate(d);
      case "GUILD_DELETE":
        return this.#onGuildDelete(d);
      case "GUILD_MEMBERS_CHUNK":
        return this.#onMembersChunk(d);
      case "GUILD_MEMBER_ADD":
      case "GUILD_MEMBER_UPDATE":
        return this.#onMemberUpsert(t, d);
      case "GUILD_MEMBER_REMOVE":
        return this.#onMemberRemove(d);
      case "GUILD_ROLE_CREATE":
      case "GUILD_ROLE_UPDATE":
        return this.#onRoleUpsert(t, d);
      case "GUILD_ROLE_DELETE":
        return this.#onRoleDelete(d);
      case "PRESENCE_UPDATE":
        return this.#onPresence(d);
      case "MESSAGE_CREATE":
        return this.#onMessage(d);
      case "RATE_LIMITED":
        return this.#onRateLimited(d);
    }
  }

  #bad(t: string, error: z.ZodError): void {
    this.#log.warn(`ignored a malformed ${t}: ${describeZodError(error)}`, TAG);
  }

  #onReady(d: unknown): void {
    const r = readySchema.safeParse(d);
    if (!r.success || this.#state !== "starting") return;
    const available = new Set((r.data.guilds ?? []).map((g) => g.id));
    let pending: Set<string>;
    if (this.#served) {
      pending = new Set();
      for (const id of this.#served) {
        if (available.has(id) || this.#guilds.has(id)) pending.add(id);
        else {
          this.#log.warn(
            `the bot is not a member of guild ${id}; invite it (OAuth2 URL with scope "bot") ` +
              `or remove the id from the served guilds`,
            TAG,
          );
        }
      }
    } else pending = available;
    for (const id of this.#guilds.keys()) pending.delete(id);
    if (pending.size === 0) return this.#resolveReady();
    this.#pendingGuilds = pending;
    this.#guildTimer = setTimeout(() => {
      this.#guildTimer = undefined;
      this.#log.warn(
        `guild(s) ${[...(this.#pendingGuilds ?? [])].join(", ")} did not arrive within ` +
          `${this.#o.guildTimeoutMs} ms; continuing without them for now`,
        TAG,
      );
      this.#resolveReady();
    }, this.#o.guildTimeoutMs);
  }

  #onGuildCreate(d: unknown): void {
    const p = guildCreateSchema.safeParse(d);
    if (!p.success) return this.#bad("GUILD_CREATE", p.error);
    const data = p.data;
    if (data.unavailable === true || !this.#serves(data.id)) return;
    const members = parseEach(memberSchema, data.members);
    const presences = parseEach(presenceSchema, data.presences);
    const roles = parseEach(roleSchema, data.roles);
    const bad = members.bad + presences.bad + roles.bad;
    if (bad > 0) {
      this.#log.warn(
        `GUILD_CREATE ${data.id}: ignored ${bad} malformed member/presence/role(s)`,
        TAG,
      );
    }
    const existing = this.#guilds.get(data.id);
    const g = existing ?? new GuildState(data.id, data.name ?? data.id, this.#o.includeOffline);
    const memberCount = data.member_count ?? members.ok.length;
    const needChunks = data.large === true || memberCount > members.ok.length;
    const apply = () => {
      if (data.name !== undefined) g.name = data.name;
      g.memberCount = memberCount;
      g.roles.clear();
      for (const r of roles.ok) g.upsertRole(r);
      // A full member list replaces what we had; a partial one (large guild) is merged
      // and completed by GUILD_MEMBERS_CHUNK, after which absent members are pruned.
      if (!needChunks) g.members.clear();
      g.presences.clear();
      g.syncSeen = null;
      g.syncNonce = null;
      for (const m of members.ok) g.upsertMember(memberRecord(m));
      for (const pr of presences.ok) g.setStatus(pr.user.id, toStatus(pr.status));
    };
    if (existing) this.#change(g, null, apply);
    else {
      apply();
      this.#guilds.set(g.id, g);
    }
    this.#log.info(
      `guild "${g.name}" (${g.id}): ${g.members.size}/${memberCount} members, ` +
        `${g.presences.size} not offline${needChunks ? "; requesting the member list" : ""}`,
      TAG,
    );
    if (needChunks) this.#requestMembers(g, members.ok.map((m) => m.user.id));
    if (this.#pendingGuilds?.delete(g.id) && this.#pendingGuilds.size === 0) this.#resolveReady();
  }

  #requestMembers(g: GuildState, seen: string[]): void {
    const nonce = crypto.randomUUID().replaceAll("-", "").slice(0, 24);
    g.syncSeen = new Set(seen);
    g.syncNonce = nonce;
    const sent = this.#gateway.send(Op.REQUEST_GUILD_MEMBERS, {
      guild_id: g.id,
      query: "",
      limit: 0,
      presences: true,
      nonce,
    });
    if (!sent) {
      g.syncSeen = null;
      g.syncNonce = null;
      this.#log.warn(`could not request members of ${g.id}: not connected`, TAG);
    }
  }

  #onRateLimited(d: unknown): void {
    const p = rateLimitedSchema.safeParse(d);
    if (!p.success) return this.#bad("RATE_LIMITED", p.error);
    const guildId = p.data.meta?.guild_id;
    if (p.data.opcode !== Op.REQUEST_GUILD_MEMBERS || !guildId) return;
    const g = this.#guilds.get(guildId);
    if (!g) return;
    const wait = Math.ceil(p.data.retry_after * 1000) + 100;
    this.#log.warn(`member request for ${guildId} rate limited; retrying in ${wait} ms`, TAG);
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      if (this.#guilds.get(guildId) === g) this.#requestMembers(g, [...(g.syncSeen ?? [])]);
    }, wait);
    this.#retryTimers.add(timer);
  }

  #onMembersChunk(d: unknown): void {
    const p = membersChunkSchema.safeParse(d);
    if (!p.success) return this.#bad("GUILD_MEMBERS_CHUNK", p.error);
    const g = this.#guilds.get(p.data.guild_id);
    if (!g) return;
    const members = parseEach(memberSchema, p.data.members);
    const presences = parseEach(presenceSchema, p.data.presences);
    const uids = [...members.ok.map((m) => m.user.id), ...presences.ok.map((x) => x.user.id)];
    this.#change(g, uids, () => {
      for (const m of members.ok) g.upsertMember(memberRecord(m));
      for (const pr of presences.ok) g.setStatus(pr.user.id, toStatus(pr.status));
    });
    const last = p.data.chunk_index === p.data.chunk_count - 1;
    if (last && g.syncNonce !== null && p.data.nonce === g.syncNonce && g.syncSeen) {
      const seen = g.syncSeen;
      const gone = [...g.members.keys()].filter((id) => !seen.has(id));
      this.#change(g, gone, () => {
        for (const id of gone) g.removeMember(id);
      });
      g.syncSeen = null;
      g.syncNonce = null;
      this.#log.info(
        `guild "${g.name}" (${g.id}): member list complete, ${g.members.size} members`,
        TAG,
      );
    }
  }

  #onGuildUpdate(d: unknown): void {
    const p = guildUpdateSchema.safeParse(d);
    if (!p.success) return this.#bad("GUILD_UPDATE", p.error);
    const g = this.#guilds.get(p.data.id);
    if (g) g.name = p.data.name;
  }

  #onGuildDelete(d: unknown): void {
    const p = guildDeleteSchema.safeParse(d);
    if (!p.success) return this.#bad("GUILD_DELETE", p.error);
    const g = this.#guilds.get(p.data.id);
    if (!g) return;
    if (p.data.unavailable === true) {
      this.#log.warn(`guild ${g.id} is unavailable (Discord outage); keeping its last state`, TAG);
      return;
    }
    this.#guilds.delete(g.id);
    this.#log.warn(`the bot was removed from guild "${g.name}" (${g.id})`, TAG);
  }

  #onMemberUpsert(t: string, d: unknown): void {
    const p = memberEventSchema.safeParse(d);
    if (!p.success) return this.#bad(t, p.error);
    const g = this.#guilds.get(p.data.guild_id);
    if (!g) return;
    const uid = p.data.user.id;
    if (t === "GUILD_MEMBER_ADD" && !g.members.has(uid)) g.memberCount++;
    this.#change(g, [uid], () => g.upsertMember(memberRecord(p.data)));
  }

  #onMemberRemove(d: unknown): void {
    const p = memberRemoveSchema.safeParse(d);
    if (!p.success) return this.#bad("GUILD_MEMBER_REMOVE", p.error);
    const g = this.#guilds.get(p.data.guild_id);
    if (!g) return;
    const uid = p.data.user.id;
    if (g.members.has(uid)) g.memberCount = Math.max(0, g.memberCount - 1);
    this.#change(g, [uid], () => g.removeMember(uid));
  }

  #withRole(g: GuildState, roleId: string): string[] {
    const out: string[] = [];
    for (const m of g.members.values()) if (m.roles.includes(roleId)) out.push(m.id);
    return out;
  }

  #onRoleUpsert(t: string, d: unknown): void {
    const p = roleEventSchema.safeParse(d);
    if (!p.success) return this.#bad(t, p.error);
    const role = roleSchema.safeParse(p.data.role);
    if (!role.success) return this.#bad(t, role.error);
    const g = this.#guilds.get(p.data.guild_id);
    if (!g) return;
    this.#change(g, this.#withRole(g, role.data.id), () => g.upsertRole(role.data));
  }

  #onRoleDelete(d: unknown): void {
    const p = roleDeleteSchema.safeParse(d);
    if (!p.success) return this.#bad("GUILD_ROLE_DELETE", p.error);
    const g = this.#guilds.get(p.data.guild_id);
    if (!g) return;
    const id = p.data.role_id;
    this.#change(g, this.#withRole(g, id), () => {
      g.roles.delete(id);
      for (const m of g.members.values()) {
        if (m.roles.includes(id)) m.roles = m.roles.filter((r) => r !== id);
      }
    });
  }

  #onPresence(d: unknown): void {
    const p = presenceUpdateSchema.safeParse(d);
    if (!p.success) return this.#bad("PRESENCE_UPDATE", p.error);
    const g = this.#guilds.get(p.data.guild_id);
    if (!g) return;
    const u = p.data.user;
    this.#change(g, [u.id], () => {
      const m = g.members.get(u.id);
      if (m) {
        // A presence may carry changed user fields.
        if (u.username !== undefined) m.username = u.username;
        if (u.global_name !== undefined) m.globalName = u.global_name;
      }
      g.setStatus(u.id, toStatus(p.data.status));
    });
  }

  #onMessage(d: unknown): void {
    const p = messageCreateSchema.safeParse(d);
    if (!p.success) return this.#bad("MESSAGE_CREATE", p.error);
    const msg = p.data;
    if (!msg.guild_id) return; // a DM
    const g = this.#guilds.get(msg.guild_id);
    if (!g) return;
    if (msg.author.bot === true || msg.webhook_id !== undefined) return;
    if (this.#channels && !this.#channels.has(msg.channel_id)) return;
    if (msg.content.trim() === "") return;
    const uid = msg.author.id;
    if (!g.members.has(uid) && msg.member) {
      // Not known yet (large guild still loading): the message tells us enough to show them.
      const member = msg.member;
      this.#change(
        g,
        [uid],
        () =>
          g.upsertMember(
            memberRecord({ user: msg.author, nick: member.nick, roles: member.roles }),
          ),
      );
    }
    this.#emit(() =>
      this.#sink?.broadcastMessage({
        server: g.id,
        uid,
        message: msg.content,
        channel: msg.channel_id,
      })
    );
  }

  /** Run `fn`, then broadcast how the entries of `uids` (all when `null`) changed. */
  #change(g: GuildState, uids: readonly string[] | null, fn: () => void): void {
    if (!this.#sink || !this.#guilds.has(g.id)) {
      fn();
      return;
    }
    let changes: EntryChange[];
    if (uids === null) {
      const before = g.snapshot();
      fn();
      changes = diffSnapshots(before, g.snapshot());
    } else {
      const unique = [...new Set(uids)];
      const before = new Map<string, Required<UserEntry> | undefined>();
      for (const uid of unique) before.set(uid, g.entry(uid));
      fn();
      changes = [];
      for (const uid of unique) {
        const c = diffEntry(uid, before.get(uid), g.entry(uid));
        if (c) changes.push(c);
      }
    }
    for (const c of changes) this.#emit(() => this.#sink?.broadcastPresence(toPresence(g.id, c)));
  }

  #emit(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      this.#log.error(`broadcast failed: ${err instanceof Error ? err.message : String(err)}`, TAG);
    }
  }
}

/** The presence event for one change. */
function toPresence(server: string, c: EntryChange): PresenceEvent {
  switch (c.kind) {
    case "remove":
      return { server, uid: c.uid, status: "offline", delete: true };
    case "update":
      if (c.statusOnly) return { server, uid: c.entry.uid, status: c.entry.status };
      // falls through: a new name or colour is sent in full
    case "add":
      return {
        server,
        uid: c.entry.uid,
        status: c.entry.status,
        username: c.entry.username,
        roleColor: c.entry.roleColor,
      };
  }
}
