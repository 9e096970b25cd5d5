/**
 * {@link DiscordGatewaySource}: real Discord guilds as d-zone servers, as a
 * {@link DataSource}. It plans the shards, opens one gateway session per
 * shard (each a `Shard` of `_shard.ts` that feeds the pure reducer and
 * carries out what comes back), answers the server list and user maps from
 * their guilds, and owns what the shards share: the IDENTIFY budget, the
 * REST limiter, info replies, OAuth validation and a takeover's snapshot.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import { SourceLogger } from "../_source_log.ts";
import type { DiscordUser, ServerMap, UserMap } from "../protocol.ts";
import type { DataSource, EventSink, SourceContext } from "../source.ts";
import { type ResolvedServer, resolveServer, type ServerConfig } from "./_config.ts";
import { GatewayClient } from "./_gateway.ts";
import {
  DiscordGatewayError,
  type GatewayClientOptions,
  type GatewaySession,
  type GatewayTiming,
} from "./_gateway_types.ts";
import { IdentifyBudget } from "./_identify_budget.ts";
import { InfoReplier, viewerUrl } from "./_info.ts";
import { discordOAuthValidator, type DiscordUserValidator } from "./_oauth.ts";
import { type DiscordSourceOptions, parseSourceOptions, type SourceSettings } from "./_options.ts";
import { SourceState } from "./_reducer.ts";
import type { FetchLike } from "./_rest.ts";
import { RestLimiter } from "./_rest_limiter.ts";
import {
  checkResume,
  type DiscordResume,
  guildFromSnapshot,
  type GuildSnapshot,
  parseSnapshot,
  rebuildGuild,
} from "./_resume.ts";
import { Shard } from "./_shard.ts";
import { planShards, shardOf, type ShardPlan } from "./_shards.ts";
import type { GuildState } from "./_state.ts";

const TAG = "discord";

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
 * ```ts
 * import { WebSocketServer } from "@dzone/dback";
 * import { DiscordGatewayError, DiscordGatewaySource } from "@dzone/dback/discord";
 *
 * const discord = new DiscordGatewaySource({
 *   token: "your-bot-token", // e.g. process.env.DISCORD_TOKEN
 *   servers: [{ id: "232769614004748288", alias: "D-World" }],
 *   // Only for this example: a gateway that is not there, so start() fails at once.
 *   gatewayUrl: "ws://127.0.0.1:9",
 *   timing: { maxStartFailures: 1 },
 *   logLevel: "silent",
 * });
 * const server = new WebSocketServer({ port: 0, source: discord, logLevel: "silent" });
 * // The server starts the source first; it rejects on a bad token, disallowed intents, no gateway.
 * const failure = await server.start().then(() => null, (err: unknown) => err);
 * await server.stop(); // stops the source too
 * if (!(failure instanceof DiscordGatewayError)) throw new Error(`unexpected: ${failure}`);
 * ```
 */
export class DiscordGatewaySource implements DataSource {
  #o: SourceSettings;
  #timing: GatewayTiming | undefined;
  #fetch: FetchLike;
  #validator: DiscordUserValidator | undefined;
  #log: SourceLogger;
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
  #rest: RestLimiter;
  #resume: DiscordResume | undefined;
  #ready: PromiseWithResolvers<void> | undefined;
  #error: DiscordGatewayError | undefined;
  #state: "idle" | "starting" | "ready" | "closed" | "failed" = "idle";

  /** Create a source; nothing connects until {@link DiscordGatewaySource.start}. Throws a `TypeError` on invalid options. */
  constructor(options: DiscordSourceOptions) {
    const { fetch: fetcher, logSink, onError, onMemberLeave, timing, resume, ...rest } = options;
    const { settings: o, entries } = parseSourceOptions(rest);
    checkResume(resume);
    this.#resume = resume;
    this.#o = o;
    this.#timing = timing;
    this.#entries = entries;
    this.#fetch = fetcher ?? ((input, init) => fetch(input, init));
    // The level as given: the default ("info") applies only without the server's logger.
    this.#log = new SourceLogger(options.logLevel, logSink);
    this.#onError = onError;
    this.#onMemberLeave = onMemberLeave;
    this.#rest = new RestLimiter({
      apiBase: o.apiBase,
      token: o.token,
      fetch: this.#fetch,
      log: this.#log,
      timeoutMs: timing?.restTimeoutMs,
      retryBaseMs: timing?.restRetryBaseMs,
    });
    if (o.infoCommand) {
      this.#info = new InfoReplier({
        rest: this.#rest,
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
   * Connect and send events to `sink` (the server passes its own, and its
   * logger as `context.log`, which the source then logs to unless it was given
   * a `logSink`). Resolves
   * once every shard is READY and every served guild the bot is in has
   * arrived (or `guildTimeoutMs` passed). Rejects with a
   * {@link DiscordGatewayError} on a fatal failure (bad token, disallowed
   * intents, unreachable gateway) and when stopped before that.
   */
  start(sink?: EventSink, context?: SourceContext): Promise<void> {
    if (sink) this.#sink = sink;
    this.#log.attach(context);
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
    this.#rest.stop();
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
    let plan: ShardPlan;
    try {
      plan = await planShards({
        ...this.#o,
        fetch: this.#fetch,
        timing: this.#timing,
        signal: this.#abort.signal,
        log: (level, message) => this.#log[level](message, TAG),
      });
    } catch (err) {
      if (this.#state !== "starting") return;
      return this.#fatal(
        err instanceof DiscordGatewayError ? err : new DiscordGatewayError(errorText(err)),
      );
    }
    if (this.#state !== "starting") return;
    const snapshot = await this.#loadSnapshot();
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
      this.#shards.push(this.#makeShard(id, plan.count, budget, plan.url, snapshot));
    }
    // In id order: the budget keeps the IDENTIFYs of each bucket apart.
    for (const s of this.#shards) s.gateway.connect();
  }

  /** The caller's snapshot, when resuming is configured and one exists (a failure is logged: identify). */
  async #loadSnapshot(): Promise<GuildSnapshot[] | undefined> {
    if (!this.#resume) return undefined;
    try {
      const got = await this.#resume.guilds();
      return got === undefined ? undefined : parseSnapshot(got);
    } catch (err) {
      this.#log.warn(`no guild snapshot to resume on (${errorText(err)}); identifying`, TAG);
      return undefined;
    }
  }

  #makeShard(
    id: number,
    count: number,
    budget: IdentifyBudget,
    url: string | undefined,
    snapshot: GuildSnapshot[] | undefined,
  ): Shard {
    const serves = (g: string) => this.#serves(g) && (count === 1 || shardOf(g, count) === id);
    const state = new SourceState({
      serves,
      settings: (g) => this.#settingsOf(g),
      infoCommand: this.#o.infoCommand,
    });
    const shard = new Shard(id, state, {
      log: this.#log,
      sink: () => this.#sink,
      live: () => this.#state !== "closed" && this.#state !== "failed",
      starting: () => this.#state === "starting",
      memberRequestTimeoutMs: this.#o.memberRequestTimeoutMs,
      guildTimeoutMs: this.#o.guildTimeoutMs,
      shardReady: () => this.#shardReady(),
      listed: (_, available) => this.#warnMissing(available),
      memberLeft: (userId, guildId) => this.#memberLeft(userId, guildId),
      infoCommand: (guildId, channelId) => this.#infoReply(guildId, channelId),
      rebuild: (s, guildId) => {
        const r = this.#settingsOf(guildId);
        return rebuildGuild(s.state, guildId, this.#rest, !!(r.listenChannels || r.ignoreChannels));
      },
    });
    for (const g of snapshot ?? []) {
      if (serves(g.id)) state.guilds.set(g.id, guildFromSnapshot(g, this.#settingsOf(g.id)));
    }
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
      onDispatch: (t, d) => shard.dispatch(t, d),
      onSession: (kind) => shard.session(kind),
      onFatal: (err) => this.#fatal(err),
    };
    if (this.#resume) {
      const store = this.#resume.sessions;
      shard.fromSnapshot = snapshot !== undefined;
      options.sessionStore = {
        // Without a snapshot a RESUME would leave the guilds empty: identify instead.
        load: (n) => snapshot ? store.load(n) : Promise.resolve(undefined),
        save: (n, session: GatewaySession | undefined) => store.save(n, session),
      };
    }
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
      this.#log.error(`onError threw: ${errorText(e)}`, TAG);
    }
  }

  #clearTimers(): void {
    for (const s of this.#shards) s.clearTimers();
  }

  #shardReady(): void {
    if (
      this.#state === "starting" && this.#shards.length === this.#plan.count &&
      this.#shards.every((s) => s.ready)
    ) {
      this.#state = "ready";
      this.#ready?.resolve();
    }
  }

  #warnMissing(available: Set<string>): void {
    if (this.#plan.count !== 1) return;
    for (const id of this.#entries.keys()) {
      if (available.has(id)) continue;
      this.#log.warn(
        `the bot is not a member of guild ${id}; invite it (OAuth2 URL with scope "bot") ` +
          `or remove the id from the served guilds`,
        TAG,
      );
    }
  }

  // A cached login needs no forgetting: membership is checked on every validation.
  #memberLeft(userId: string, guildId: string): void {
    try {
      this.#onMemberLeave?.(userId, guildId);
    } catch (err) {
      this.#log.error(`onMemberLeave threw: ${errorText(err)}`, TAG);
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
