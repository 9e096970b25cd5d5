/**
 * {@link DiscordGatewaySource}: real Discord guilds as d-zone servers, as a
 * {@link DataSource}. The I/O shell around the pure reducer (`reducer.ts`):
 * it owns the gateway sessions (one per shard), timers and REST calls, feeds
 * every dispatch to the reducer and carries out what comes back (broadcasts
 * through the {@link EventSink}, member requests, info replies).
 *
 * @module
 */
import { consoleSink, Logger } from "../log.ts";
import type { DiscordUser, ServerMap, UserMap } from "../protocol.ts";
import type { DataSource, EventSink } from "../source.ts";
import { type ResolvedServer, resolveServer, type ServerConfig } from "./config.ts";
import {
  DiscordGatewayError,
  FATAL_CLOSE_CODES,
  GatewayClient,
  type GatewayClientOptions,
  type GatewayTiming,
  IdentifyBudget,
} from "./gateway.ts";
import { InfoReplier, viewerUrl } from "./info.ts";
import { discordOAuthValidator, type DiscordUserValidator } from "./oauth.ts";
import { type DiscordSourceOptions, parseSourceOptions, type SourceSettings } from "./options.ts";
import { type Output, reduce, reissueMemberRequests, SourceState } from "./reducer.ts";
import { DEFAULT_GATEWAY_URL, DiscordHttpError, type FetchLike, isDiscordApiBase } from "./rest.ts";
import { Op } from "./schemas.ts";
import { fetchShardPlan, shardOf, type ShardPlan } from "./shards.ts";
import type { GuildState } from "./state.ts";
import { errorText as errText } from "../_errors.ts";

const TAG = "discord";

/** What the source needs of a gateway session; {@link GatewayClient} fits. */
interface GatewayLike {
  connect(): void;
  /** `key`: a frame still queued under the same key is replaced (gateways that keep a queue across reconnects). */
  send(op: number, d: unknown, options?: { key?: string }): boolean;
  close(): Promise<void>;
}

/** One gateway session and the state of its guilds. */
interface Shard {
  id: number;
  gateway: GatewayLike;
  state: SourceState;
  /** Guilds READY promised that have not arrived yet; `null` once the shard is ready. */
  pending: Set<string> | null;
  ready: boolean;
  guildTimer?: ReturnType<typeof setTimeout>;
}

/**
 * A d-zone data source backed by the Discord Gateway (v10, JSON) and REST
 * API. Give it to the server and the server starts and stops it:
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
 * import process from "node:process";
 * import { WebSocketServer } from "@dzone/dback";
 * import { DiscordGatewaySource } from "@dzone/dback/discord";
 *
 * const discord = new DiscordGatewaySource({
 *   token: process.env.DISCORD_TOKEN!,
 *   servers: [{ id: "232769614004748288", alias: "D-World" }],
 * });
 * const server = new WebSocketServer({ port: 3000, source: discord });
 * await server.start(); // rejects on a bad token or disallowed intents
 * // later
 * await server.stop(); // stops the source too
 * ```
 */
export class DiscordGatewaySource implements DataSource {
  #o: SourceSettings;
  #timing: GatewayTiming | undefined;
  #fetch: FetchLike;
  #validator: DiscordUserValidator | undefined;
  #log: Logger;
  #onError?: (error: DiscordGatewayError) => void;
  #onMemberLeave?: (userId: string, guildId: string) => void;
  #sink: EventSink | undefined;
  #shards: Shard[] = [];
  #plan: ShardPlan = { count: 1, maxConcurrency: 1 };
  /** Cancels the `GET /gateway/bot` of `start()` when stopped. */
  #abort = new AbortController();
  /** Configured servers by guild id, in list order. */
  #entries: Map<string, ServerConfig>;
  #settings = new Map<string, ResolvedServer>();
  #info: InfoReplier | undefined;
  #ready: PromiseWithResolvers<void> | undefined;
  #memberTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #error: DiscordGatewayError | undefined;
  #state: "idle" | "starting" | "ready" | "closed" | "failed" = "idle";

  /** Create a source; nothing connects until {@link DiscordGatewaySource.start}. Throws a `TypeError` on invalid options. */
  constructor(options: DiscordSourceOptions) {
    const { fetch: fetcher, logSink, onError, onMemberLeave, timing, ...rest } = options;
    const { settings: o, entries } = parseSourceOptions(rest);
    this.#o = o;
    this.#timing = timing;
    this.#entries = entries;
    this.#fetch = fetcher ?? ((input, init) => fetch(input, init));
    this.#log = new Logger(o.logLevel, logSink ?? consoleSink);
    this.#onError = onError;
    this.#onMemberLeave = onMemberLeave;
    if (o.infoCommand) {
      this.#info = new InfoReplier({
        apiBase: o.apiBase,
        token: o.token,
        fetch: this.#fetch,
        cooldownMs: o.infoCooldownMs,
        log: this.#log,
      });
    }
  }

  /** The fatal error that stopped the source, if any. */
  get error(): DiscordGatewayError | undefined {
    return this.#error;
  }

  /** Ids of the served guilds whose state has arrived, in server-list order. */
  get guildIds(): string[] {
    return this.#ordered().map((g) => g.id);
  }

  /** Whether every shard is READY and the source has not stopped. */
  get ready(): boolean {
    return this.#state === "ready";
  }

  /** Number of gateway sessions (shards); known once `start()` has begun. */
  get shardCount(): number {
    return this.#plan.count;
  }

  /**
   * Connect and send events to `sink` (the server passes its own). Resolves
   * once every shard is READY and every served guild the bot is in has
   * arrived (or `guildTimeoutMs` passed). Rejects with a
   * {@link DiscordGatewayError} on a fatal failure (bad token, disallowed
   * intents, unreachable gateway) and when stopped before that.
   */
  start(sink?: EventSink): Promise<void> {
    if (sink) this.#sink = sink;
    if (this.#ready) return this.#ready.promise;
    this.#ready = Promise.withResolvers<void>();
    this.#ready.promise.catch(() => {}); // the caller gets the rejection; do not report it twice
    this.#state = "starting";
    void this.#launch();
    return this.#ready.promise;
  }

  /** Disconnect for good: stops heartbeats, timers and sockets. The last known state stays readable. */
  async stop(): Promise<void> {
    if (this.#state !== "failed") this.#state = "closed";
    this.#abort.abort();
    this.#clearTimers();
    this.#ready?.reject(
      new Error("DiscordGatewaySource closed before it was ready (stop() was called)"),
    );
    await Promise.all([...this.#shards.map((s) => s.gateway.close()), this.#info?.stop()]);
  }

  /** @deprecated Use {@link DiscordGatewaySource.stop}. */
  close(): Promise<void> {
    return this.stop();
  }

  /** The server map of the served guilds that have arrived; the first (or the configured default) is the default. */
  getServerData(): ServerMap {
    const out: ServerMap = {};
    const guilds = this.#ordered();
    const def = guilds.find((g) => this.#entries.get(g.id)?.default) ?? guilds[0];
    for (const g of guilds) {
      const s = this.#settingsOf(g.id);
      out[g.id] = {
        id: s.slug,
        name: s.alias ?? g.name,
        default: g === def,
        passworded: s.passworded,
        ...(s.password !== undefined ? { password: s.password } : {}),
      };
    }
    return out;
  }

  /** The user map of one served guild. Throws for a guild that is not (yet) available. */
  getUserData(guildId: string): UserMap {
    const g = this.#guild(guildId);
    if (!g) throw new Error(`guild ${guildId} is not available`);
    return g.userMap();
  }

  /** The configured OAuth2 client id for a served guild. */
  getClientId(guildId: string): string | undefined {
    return this.#guild(guildId) ? this.#o.clientId : undefined;
  }

  /**
   * Whether an OAuth2 access token belongs to `user` (asked of
   * `GET {apiBase}/users/@me`) and that user is a member of the guild now.
   */
  async validateDiscordUser(token: string, user: DiscordUser, guildId: string): Promise<boolean> {
    if (!this.#guild(guildId)) return false;
    // The shared validator brings caching, 429 back-off and fail-closed timeouts;
    // membership comes from the guild state this source already keeps.
    this.#validator ??= discordOAuthValidator({
      apiBase: this.#o.apiBase,
      fetch: (input, init) => this.#fetch(input instanceof Request ? input.url : input, init),
      isMember: (userId, id) => this.#isMember(userId, id),
      onError: (message) => this.#log.warn(message, TAG),
    });
    const ok = await this.#validator(token, user, guildId);
    // A cached "allowed" must not outlive the membership (GUILD_MEMBER_REMOVE).
    return ok && this.#isMember(user.id, guildId);
  }

  // ---- internals ----

  #isMember(userId: string, guildId: string): boolean {
    return this.#guild(guildId)?.members.has(userId) ?? false;
  }

  #serves(guildId: string): boolean {
    return this.#o.allGuilds || this.#entries.has(guildId);
  }

  #settingsOf(guildId: string): ResolvedServer {
    let s = this.#settings.get(guildId);
    if (!s) {
      s = resolveServer(guildId, this.#entries.get(guildId), {
        passworded: this.#o.passworded,
        includeOffline: this.#o.includeOffline,
        listenChannels: this.#o.channelIds,
        url: this.#o.url,
      });
      this.#settings.set(guildId, s);
    }
    return s;
  }

  #guild(guildId: string): GuildState | undefined {
    for (const s of this.#shards) {
      const g = s.state.guilds.get(guildId);
      if (g) return g;
    }
    return undefined;
  }

  #ordered(): GuildState[] {
    const out: GuildState[] = [];
    for (const id of this.#entries.keys()) {
      const g = this.#guild(id);
      if (g) out.push(g);
    }
    if (this.#o.allGuilds) {
      for (const s of this.#shards) {
        for (const g of s.state.guilds.values()) if (!this.#entries.has(g.id)) out.push(g);
      }
    }
    return out;
  }

  async #launch(): Promise<void> {
    const fixed = typeof this.#o.shards === "number" ? this.#o.shards : undefined;
    let plan: ShardPlan = { count: fixed ?? 1, maxConcurrency: 1 };
    // Ask once for every shard (the count, the URL, the IDENTIFY budget) rather
    // than once per shard; a single unsharded client asks on its own.
    if (fixed === undefined || (fixed > 1 && !this.#o.gatewayUrl)) {
      const t = this.#timing ?? {};
      try {
        const asked = await fetchShardPlan(this.#fetch, this.#o.apiBase, this.#o.token, {
          attempts: t.restAttempts,
          retryBaseMs: t.restRetryBaseMs,
          timeoutMs: t.restTimeoutMs,
          signal: this.#abort.signal,
          onRetry: (failure, wait) =>
            this.#log.warn(`GET /gateway/bot: ${failure}; retrying in ${wait} ms`, TAG),
        });
        plan = { ...asked, count: fixed ?? asked.count };
        this.#log.info(
          `${plan.count} shard(s) (Discord recommends ${asked.count}), ` +
            `${plan.maxConcurrency} may identify at once` +
            (plan.sessionStartLimit
              ? `, ${plan.sessionStartLimit.remaining} IDENTIFYs left today`
              : "") +
            " (GET /gateway/bot)",
          TAG,
        );
      } catch (err) {
        if (this.#state !== "starting") return;
        const what = `cannot ask ${this.#o.apiBase}/gateway/bot for the gateway and shard count: ${
          errText(err)
        }`;
        if (err instanceof DiscordHttpError && err.status === 401) {
          return this.#fatal(new DiscordGatewayError(`${what}. ${FATAL_CLOSE_CODES[4004]}`, 4004));
        }
        if (!isDiscordApiBase(this.#o.apiBase)) {
          // Never send the token to Discord's real gateway when the API base is elsewhere.
          return this.#fatal(
            new DiscordGatewayError(what, err instanceof DiscordHttpError ? err.status : undefined),
          );
        }
        // Discord itself is having a bad day: its public gateway, and one shard unless
        // the count is fixed (Discord closes with 4011 if the bot really needs more).
        this.#log.warn(
          `${what}; using ${DEFAULT_GATEWAY_URL} with ${plan.count} shard(s)`,
          TAG,
        );
        plan = { ...plan, url: DEFAULT_GATEWAY_URL };
      }
    }
    if (this.#state !== "starting") return;
    this.#plan = plan;
    // One budget for every shard of this bot: IDENTIFYs spaced per
    // max_concurrency bucket, none beyond session_start_limit.remaining.
    const budget = new IdentifyBudget({
      intervalMs: this.#timing?.identifyIntervalMs ?? 5000,
      maxConcurrency: plan.maxConcurrency,
      ...plan.sessionStartLimit,
    });
    for (let id = 0; id < plan.count; id++) {
      this.#shards.push(this.#makeShard(id, plan.count, budget, plan.url));
    }
    // In id order: the budget keeps the IDENTIFYs of each bucket apart.
    for (const s of this.#shards) s.gateway.connect();
  }

  #makeShard(id: number, count: number, budget: IdentifyBudget, url?: string): Shard {
    const state = new SourceState({
      serves: (g) => this.#serves(g) && (count === 1 || shardOf(g, count) === id),
      settings: (g) => this.#settingsOf(g),
      infoCommand: this.#o.infoCommand,
    });
    const shard: Shard = { id, state, pending: null, ready: false, gateway: undefined! };
    const options: GatewayClientOptions = {
      token: this.#o.token,
      intents: this.#o.intents,
      // The URL `GET /gateway/bot` gave the plan, so shards do not each ask again.
      gatewayUrl: this.#o.gatewayUrl ?? url,
      apiBase: this.#o.apiBase,
      fetch: this.#fetch,
      log: this.#log,
      timing: this.#timing,
      identifyBudget: budget,
      onDispatch: (t, d) => this.#dispatch(shard, t, d),
      onSession: (kind) => {
        if (kind !== "resumed" || this.#state === "closed" || this.#state === "failed") return;
        // A request sent on the dropped socket may never have reached Discord.
        this.#carryOut(shard, reissueMemberRequests(shard.state));
      },
      onFatal: (err) => this.#fatal(err),
    };
    // Unsharded bots send no `shard` (and keep log lines without a shard prefix).
    if (count > 1) options.shard = [id, count];
    shard.gateway = new GatewayClient(options);
    return shard;
  }

  #fatal(err: DiscordGatewayError): void {
    if (this.#state === "failed" || this.#state === "closed") return;
    this.#error = err;
    this.#state = "failed";
    this.#clearTimers();
    this.#ready?.reject(err);
    // Other shards cannot serve a half world: stop them too.
    for (const s of this.#shards) void s.gateway.close();
    try {
      this.#onError?.(err);
    } catch (e) {
      this.#log.error(`onError threw: ${errText(e)}`, TAG);
    }
  }

  #clearTimers(): void {
    for (const s of this.#shards) {
      clearTimeout(s.guildTimer);
      s.guildTimer = undefined;
    }
    for (const t of this.#memberTimers.values()) clearTimeout(t);
    this.#memberTimers.clear();
  }

  #shardReady(shard: Shard): void {
    clearTimeout(shard.guildTimer);
    shard.guildTimer = undefined;
    shard.pending = null;
    shard.ready = true;
    if (
      this.#state === "starting" && this.#shards.length === this.#plan.count &&
      this.#shards.every((s) => s.ready)
    ) {
      this.#state = "ready";
      this.#ready?.resolve();
    }
  }

  #dispatch(shard: Shard, t: string, d: unknown): void {
    if (this.#state === "closed" || this.#state === "failed") return;
    this.#carryOut(shard, reduce(shard.state, t, d));
  }

  #carryOut(shard: Shard, outputs: Output[]): void {
    for (const o of outputs) {
      try {
        this.#one(shard, o);
      } catch (err) {
        this.#log.error(`handling ${o.kind} failed: ${errText(err)}`, TAG);
      }
    }
  }

  #one(shard: Shard, o: Output): void {
    switch (o.kind) {
      case "presence":
        this.#sink?.emit({ type: "presence", event: o.event });
        return;
      case "message":
        this.#sink?.emit({ type: "message", event: o.event });
        return;
      case "log":
        this.#log[o.level](o.message, TAG);
        return;
      case "ready":
        return this.#onReady(shard, o.guildIds);
      case "guild-arrived":
        if (shard.pending?.delete(o.guildId) && shard.pending.size === 0) this.#shardReady(shard);
        return;
      case "guild-gone":
        this.#clearMemberTimer(o.guildId);
        this.#sink?.emit({ type: "server-gone", event: { server: o.guildId } });
        return;
      case "member-left":
        this.#forgetLogin(o.userId, o.guildId);
        return;
      case "request-members":
        return this.#requestMembers(shard, o.guildId, o.nonce);
      case "retry-members": {
        this.#clearMemberTimer(o.guildId);
        const timer = setTimeout(() => {
          this.#memberTimers.delete(o.guildId);
          this.#carryOut(shard, reissueMemberRequests(shard.state, [o.guildId]));
        }, o.afterMs);
        this.#memberTimers.set(o.guildId, timer);
        return;
      }
      case "members-complete":
        this.#clearMemberTimer(o.guildId);
        return;
      case "info-command":
        return this.#infoReply(o.guildId, o.channelId);
    }
  }

  #onReady(shard: Shard, available: string[]): void {
    if (shard.ready || this.#state !== "starting") return;
    const availableSet = new Set(available);
    const pending = new Set<string>();
    for (const id of available) if (shard.state.config.serves(id)) pending.add(id);
    if (this.#plan.count === 1) {
      for (const id of this.#entries.keys()) {
        if (availableSet.has(id)) continue;
        this.#log.warn(
          `the bot is not a member of guild ${id}; invite it (OAuth2 URL with scope "bot") ` +
            `or remove the id from the served guilds`,
          TAG,
        );
      }
    }
    for (const id of shard.state.guilds.keys()) pending.delete(id);
    if (pending.size === 0) return this.#shardReady(shard);
    shard.pending = pending;
    shard.guildTimer = setTimeout(() => {
      shard.guildTimer = undefined;
      this.#log.warn(
        `guild(s) ${[...(shard.pending ?? [])].join(", ")} did not arrive within ` +
          `${this.#o.guildTimeoutMs} ms; continuing without them for now`,
        TAG,
      );
      this.#shardReady(shard);
    }, this.#o.guildTimeoutMs);
  }

  #clearMemberTimer(guildId: string): void {
    const t = this.#memberTimers.get(guildId);
    if (t !== undefined) clearTimeout(t);
    this.#memberTimers.delete(guildId);
  }

  #requestMembers(shard: Shard, guildId: string, nonce: string): void {
    // One queued request per guild: a re-issue replaces one still waiting to be sent.
    const sent = shard.gateway.send(Op.REQUEST_GUILD_MEMBERS, {
      guild_id: guildId,
      query: "",
      limit: 0,
      presences: true,
      nonce,
    }, { key: "members:" + guildId });
    if (!sent) {
      this.#log.warn(
        `could not send the member request of ${guildId} (not connected, or the send queue is full); asking again later`,
        TAG,
      );
    }
    // Until the chunks of this nonce are complete, ask again now and then.
    this.#clearMemberTimer(guildId);
    const timer = setTimeout(() => {
      this.#memberTimers.delete(guildId);
      if (shard.state.syncs.get(guildId)?.nonce !== nonce) return;
      this.#log.warn(
        `member list of ${guildId} incomplete after ${this.#o.memberRequestTimeoutMs} ms; asking again`,
        TAG,
      );
      this.#carryOut(shard, reissueMemberRequests(shard.state, [guildId]));
    }, this.#o.memberRequestTimeoutMs);
    this.#memberTimers.set(guildId, timer);
  }

  #forgetLogin(userId: string, guildId: string): void {
    // Adapter: the shared validator gains `forget` in the OAuth rework; membership is
    // re-checked after every validation anyway (see validateDiscordUser).
    (this.#validator as { forget?: (u: string, g: string) => void } | undefined)?.forget?.(
      userId,
      guildId,
    );
    try {
      this.#onMemberLeave?.(userId, guildId);
    } catch (err) {
      this.#log.error(`onMemberLeave threw: ${errText(err)}`, TAG);
    }
  }

  #infoReply(guildId: string, channelId: string): void {
    const g = this.#guild(guildId);
    if (!this.#info || !g) return;
    const s = this.#settingsOf(guildId);
    if (!s.url) {
      this.#log.warn(`info command in ${guildId} but no url is configured for it`, TAG);
      return;
    }
    const name = s.alias ?? g.name;
    this.#info.reply(channelId, `Watch ${name} in d-zone: ${viewerUrl(s.url, s.slug)}`);
  }
}
