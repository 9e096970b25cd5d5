/**
 * A minimal Discord Gateway v10 client (JSON encoding, no compression) over
 * the runtime's `WebSocket`: HELLO → IDENTIFY or RESUME, heartbeats with
 * initial jitter, zombied-connection detection, op 7 RECONNECT, op 9 INVALID
 * SESSION, no retry on fatal close codes, and the defences a bad day at
 * Discord needs:
 *
 * - every reconnect path backs off (jittered, capped) until a READY or
 *   RESUMED proves the gateway healthy again;
 * - deadlines for HELLO and for READY/RESUMED;
 * - a send limiter below Discord's 120 frames per 60 s, counted when frames
 *   are sent, with a heartbeat reserve sized from the heartbeat interval;
 * - a send queue that survives reconnects (data frames wait for the next
 *   READY/RESUMED, and `onSession` tells the caller one happened);
 * - an IDENTIFY budget (`session_start_limit`, `max_concurrency`, and a
 *   growing wait after IDENTIFYs that fail);
 * - sharding (`shard: [id, count]`) and an optional session store so another
 *   process can RESUME the session.
 *
 * It knows nothing about guilds: every dispatch goes to `onDispatch`.
 *
 * @module
 */
import process from "node:process";
import type { Logger } from "../log.ts";
import {
  DEFAULT_GATEWAY_URL,
  DiscordHttpError,
  fetchGatewayBot,
  type FetchLike,
  type GatewayBotInfo,
  gatewayWsUrl,
  isDiscordApiBase,
  type SessionStartLimit,
} from "./rest.ts";
import { envelopeSchema, helloSchema, Op, readySchema, storedSessionSchema } from "./schemas.ts";
import { errorText as errText } from "../_errors.ts";

/**
 * Gateway intents. `GUILD_MEMBERS`, `GUILD_PRESENCES` and `MESSAGE_CONTENT`
 * are **privileged**: switch them on in the Discord developer portal
 * (your application → Bot → Privileged Gateway Intents), or Discord closes
 * the connection with 4014 "Disallowed intent(s)".
 */
export const Intents = {
  /** Guild create/update/delete and roles. Not privileged. */
  GUILDS: 1 << 0,
  /** Member add/update/remove and member lists. **Privileged** ("Server Members Intent"). */
  GUILD_MEMBERS: 1 << 1,
  /** Presence updates and presences in member lists. **Privileged** ("Presence Intent"). */
  GUILD_PRESENCES: 1 << 8,
  /** Messages in guild channels. Not privileged. */
  GUILD_MESSAGES: 1 << 9,
  /** The text of messages. **Privileged** ("Message Content Intent"). */
  MESSAGE_CONTENT: 1 << 15,
} as const;

/** The intents the gateway source asks for: all of {@link Intents} (33539). */
export const DEFAULT_INTENTS: number = Intents.GUILDS | Intents.GUILD_MEMBERS |
  Intents.GUILD_PRESENCES | Intents.GUILD_MESSAGES | Intents.MESSAGE_CONTENT;

/** Close codes after which reconnecting cannot help, with what to do about them. */
export const FATAL_CLOSE_CODES: Readonly<Record<number, string>> = {
  4004: "Authentication failed: Discord rejected the bot token. Copy a fresh token from the " +
    "developer portal (your application → Bot → Reset Token) into DISCORD_TOKEN.",
  4010: "Invalid shard: the shard id and count sent in IDENTIFY are not valid for this bot.",
  4011: "Sharding required: the bot is in too many guilds for one connection " +
    "(more than 2500); run several shards (GET /gateway/bot recommends how many).",
  4012: "Invalid API version: the gateway does not accept v10; check --gateway-url.",
  4013: "Invalid intents: the intents value is not valid.",
  4014: "Disallowed intents: enable the privileged intents SERVER MEMBERS INTENT, " +
    "PRESENCE INTENT and MESSAGE CONTENT INTENT in the Discord developer portal " +
    "(your application → Bot → Privileged Gateway Intents).",
};

/** Close codes after which the session cannot be resumed (identify again). */
const NEW_SESSION_CLOSE_CODES = new Set([4007, 4009]);

/** Our own close code when we drop a connection to resume it (not 1000/1001: those end the session). */
const RECONNECT_CLOSE_CODE = 4900;

/** A gateway failure the source will not retry. */
export class DiscordGatewayError extends Error {
  /** The WebSocket close code, or the HTTP status, when there is one. */
  readonly code?: number;
  /** Create the error. */
  constructor(message: string, code?: number) {
    super(message);
    this.name = "DiscordGatewayError";
    this.code = code;
  }
}

/** Timing knobs; the defaults follow Discord's guidance. Tests shorten them. */
export interface GatewayTiming {
  /** Least time between two IDENTIFY frames of one concurrency bucket, ms. Default 5000. */
  identifyIntervalMs?: number;
  /** First reconnect backoff step, ms. Default 1000. */
  reconnectBaseMs?: number;
  /** Largest reconnect backoff, ms. Default 60000. */
  reconnectMaxMs?: number;
  /** Wait after INVALID_SESSION (d=false) before identifying again, ms. Default random 1000–5000. */
  invalidSessionDelayMs?: number;
  /** Connection failures in a row before the first READY that give up. Default 5. */
  maxStartFailures?: number;
  /** How long `close()` waits for sockets (and a last session save) to finish, ms. Default 2000. */
  closeTimeoutMs?: number;
  /** Frames per send window, counted when sent. Default 110 (Discord allows 120). */
  sendLimit?: number;
  /** Send window, ms. Default 60000. */
  sendWindowMs?: number;
  /** Deadline from opening a socket to its HELLO, ms. Default 10000. */
  helloTimeoutMs?: number;
  /** Deadline from sending IDENTIFY/RESUME to READY/RESUMED, ms. Default 30000. */
  readyTimeoutMs?: number;
  /** Longest wait between IDENTIFYs after IDENTIFYs that failed in a row, ms. Default 600000. */
  identifyBackoffMaxMs?: number;
  /** Requests to `GET /gateway/bot` at most before giving up. Default 4. */
  restAttempts?: number;
  /** First back-off between those requests after a 5xx or network failure, ms. Default 1000. */
  restRetryBaseMs?: number;
  /** Deadline for each of those requests, ms. Default 10000. */
  restTimeoutMs?: number;
  /** Least time between two session-store saves, ms. Default 1000. */
  sessionSaveIntervalMs?: number;
}

/** A resumable gateway session, as a {@link GatewaySessionStore} keeps it. */
export interface GatewaySession {
  /** READY's `session_id`. */
  sessionId: string;
  /** The last sequence number received. */
  seq: number;
  /** READY's `resume_gateway_url`. */
  resumeUrl: string;
}

/**
 * Where a {@link GatewayClient} keeps its session so that another process
 * (or the next start) can RESUME it instead of identifying. `load` is asked
 * once at start; `save` after READY, after RESUMED, at most once per
 * `sessionSaveIntervalMs` while the sequence moves, and with `undefined`
 * when the session ends. Failures are logged and otherwise ignored.
 *
 * @example
 * ```ts
 * import type { GatewaySession, GatewaySessionStore } from "./gateway.ts";
 *
 * const saved = new Map<number, GatewaySession>();
 * const store: GatewaySessionStore = {
 *   load: (shard) => Promise.resolve(saved.get(shard)),
 *   save: (shard, s) => Promise.resolve(void (s ? saved.set(shard, s) : saved.delete(shard))),
 * };
 * await store.save(0, { sessionId: "abc", seq: 7, resumeUrl: "wss://resume.example" });
 * if ((await store.load(0))?.seq !== 7) throw new Error("not saved");
 * ```
 */
export interface GatewaySessionStore {
  /** The saved session of `shard`, if any. */
  load(shard: number): Promise<GatewaySession | undefined>;
  /** Save (or, with `undefined`, forget) the session of `shard`. */
  save(shard: number, session: GatewaySession | undefined): Promise<void>;
}

/** Options of {@link IdentifyBudget}. */
export interface IdentifyBudgetOptions {
  /** Least time between two IDENTIFYs of one bucket, ms. Default 5000. */
  intervalMs?: number;
  /** Shards that may IDENTIFY in the same slot (`session_start_limit.max_concurrency`). Default 1. */
  maxConcurrency?: number;
  /** IDENTIFYs allowed per period. Default unknown (no cap). */
  total?: number;
  /** IDENTIFYs left in this period. Default unknown (no cap). */
  remaining?: number;
  /** When this period ends, ms from now. */
  resetAfterMs?: number;
}

/**
 * Discord's IDENTIFY rules for one bot, shared by all its shards: one
 * IDENTIFY per `intervalMs` per bucket (`shard id % maxConcurrency`), and
 * none once `remaining` is used up until the period resets.
 *
 * @example
 * ```ts
 * import { IdentifyBudget } from "./gateway.ts";
 *
 * const budget = new IdentifyBudget({ intervalMs: 5000, maxConcurrency: 2 });
 * const waits = [0, 1, 2, 3].map((shard) => budget.reserve(shard, 0));
 * if (waits.join() !== "0,0,5000,5000") throw new Error(waits.join());
 * ```
 */
export class IdentifyBudget {
  #intervalMs: number;
  #maxConcurrency: number;
  #total: number | undefined;
  #remaining: number | undefined;
  #resetAt = 0;
  #next = new Map<number, number>();

  /** Create a budget; `update` it with each fresh `session_start_limit`. */
  constructor(options: IdentifyBudgetOptions = {}) {
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#maxConcurrency = Math.max(1, options.maxConcurrency ?? 1);
    this.#total = options.total;
    this.#remaining = options.remaining;
    if (options.resetAfterMs !== undefined) this.#resetAt = Date.now() + options.resetAfterMs;
  }

  /** `session_start_limit.max_concurrency` in force. */
  get maxConcurrency(): number {
    return this.#maxConcurrency;
  }

  /** IDENTIFYs left in this period, when known. */
  get remaining(): number | undefined {
    return this.#remaining;
  }

  /** Take Discord's latest numbers (from `GET /gateway/bot`). */
  update(limit: SessionStartLimit, now = Date.now()): void {
    this.#total = limit.total;
    this.#remaining = limit.remaining;
    this.#resetAt = now + limit.resetAfterMs;
    this.#maxConcurrency = Math.max(1, limit.maxConcurrency);
  }

  /** Reserve the next IDENTIFY slot of `shard`; returns how long to wait for it, ms. */
  reserve(shard: number, now = Date.now()): number {
    let start = now;
    if (this.#remaining !== undefined && this.#remaining <= 0) {
      if (this.#resetAt > now) start = this.#resetAt;
      this.#remaining = this.#total;
      this.#resetAt = start + 24 * 60 * 60_000;
    }
    const bucket = shard % this.#maxConcurrency;
    start = Math.max(start, this.#next.get(bucket) ?? 0);
    this.#next.set(bucket, start + this.#intervalMs);
    if (this.#remaining !== undefined) this.#remaining--;
    return start - now;
  }
}

/** Options of {@link GatewayClient}. */
export interface GatewayClientOptions {
  /** Bot token (without the `Bot ` prefix). */
  token: string;
  /** Intents bit set. */
  intents: number;
  /** Fixed gateway URL; otherwise `GET {apiBase}/gateway/bot`. */
  gatewayUrl?: string;
  /** REST API base. */
  apiBase: string;
  /** `fetch` for REST calls. */
  fetch: FetchLike;
  /** Logger. */
  log: Logger;
  /** Every dispatch (op 0), after READY/RESUMED bookkeeping. */
  onDispatch: (t: string, d: unknown) => void;
  /** A failure that stopped the client for good. */
  onFatal: (err: DiscordGatewayError) => void;
  /**
   * After each READY (a new session: whatever was sent on the old one is
   * gone) and each RESUMED (frames still queued are sent now; requests sent
   * on the dropped socket may have lost their answers). Re-issue what matters.
   */
  onSession?: (kind: "ready" | "resumed") => void;
  /** `[shard id, shard count]` sent in IDENTIFY. Default: no sharding. */
  shard?: [number, number];
  /** Keep the session resumable across processes; see {@link GatewaySessionStore}. */
  sessionStore?: GatewaySessionStore;
  /** IDENTIFY budget shared by the shards of one bot. Default: one of its own. */
  identifyBudget?: IdentifyBudget;
  /** Data frames queued at most; `send` refuses beyond. Default 1000. */
  maxQueuedFrames?: number;
  /** Timing knobs. */
  timing?: GatewayTiming;
}

/** Options of {@link GatewayClient.send}. */
export interface SendOptions {
  /** A frame still queued under the same key is replaced (it keeps its place). */
  key?: string;
}

const TAG = "discord";

type Entry = { payload: string; key?: string; onSent?: () => void };

/**
 * Keeps to a frame budget per window, counting frames when they are sent.
 * Control frames (heartbeats, IDENTIFY, RESUME) go first and may use a
 * reserve that data frames leave free; data frames go only while `ready()`
 * holds (a session is established) and stay queued otherwise.
 */
export class SendLimiter {
  #limit: number;
  #windowMs: number;
  #guardMs: number;
  #reserve: number;
  #send: (payload: string) => boolean;
  #ready: () => boolean;
  #maxData: number;
  #stamps: number[] = [];
  #control: Entry[] = [];
  #data: Entry[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `send` is called for every frame the budget allows and answers whether
   * it went out; `ready` says whether data frames may go now.
   */
  constructor(
    limit: number,
    windowMs: number,
    send: (payload: string) => boolean,
    ready: () => boolean = () => true,
    maxData = 1000,
  ) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    // A stamp expires a little after the window, so frames that leave late
    // (a busy loop, a slow peer) still cannot bunch into one of Discord's windows.
    this.#guardMs = Math.max(50, Math.ceil(windowMs / 60));
    this.#reserve = Math.min(5, Math.floor(limit / 10));
    this.#send = send;
    this.#ready = ready;
    this.#maxData = maxData;
  }

  /** Frames waiting (control and data). */
  get queued(): number {
    return this.#control.length + this.#data.length;
  }

  /** Frames left for control frames only. */
  get reserve(): number {
    return this.#reserve;
  }

  /** Size the control reserve for heartbeats every `heartbeatMs` (plus one IDENTIFY/RESUME and one requested beat). */
  setHeartbeat(heartbeatMs: number): void {
    const beats = Math.ceil((this.#windowMs + this.#guardMs) / Math.max(1, heartbeatMs));
    this.#reserve = Math.min(Math.floor(this.#limit / 2), beats + 2);
  }

  /** Queue a control frame (it jumps ahead of data frames). */
  control(payload: string, onSent?: () => void): void {
    this.#control.push({ payload, onSent });
    this.flush();
  }

  /** Queue a data frame; `false` when the queue is full. */
  push(payload: string, key?: string): boolean {
    if (key !== undefined) {
      const same = this.#data.find((e) => e.key === key);
      if (same) {
        same.payload = payload;
        return true;
      }
    }
    if (this.#data.length >= this.#maxData) return false;
    this.#data.push({ payload, key });
    this.flush();
    return true;
  }

  /** Drop queued control frames (they belong to a connection that is gone); data frames stay. */
  dropControl(): void {
    this.#control = [];
  }

  /** Drop everything (the client stopped). */
  clear(): void {
    this.#control = [];
    this.#data = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Send what the budget allows now; schedule the rest. */
  flush(): void {
    const now = Date.now();
    const life = this.#windowMs + this.#guardMs;
    while (this.#stamps.length && this.#stamps[0] <= now - life) this.#stamps.shift();
    while (this.#control.length && this.#stamps.length < this.#limit) {
      const e = this.#control[0];
      if (!this.#send(e.payload)) break;
      this.#control.shift();
      this.#stamps.push(now);
      e.onSent?.();
    }
    const dataBudget = this.#limit - this.#reserve;
    while (
      this.#control.length === 0 && this.#data.length && this.#stamps.length < dataBudget &&
      this.#ready()
    ) {
      if (!this.#send(this.#data[0].payload)) break;
      this.#data.shift();
      this.#stamps.push(now);
    }
    const blocked = this.#control.length > 0 || (this.#data.length > 0 && this.#ready());
    if (blocked && this.#timer === undefined && this.#stamps.length) {
      const wait = Math.max(1, this.#stamps[0] + life - now);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, wait);
    }
  }
}

/** One gateway session, kept alive across reconnects until {@link GatewayClient.close}. */
export class GatewayClient {
  #o: GatewayClientOptions;
  #t: Required<Omit<GatewayTiming, "invalidSessionDelayMs">> & { invalidSessionDelayMs?: number };
  #ws: WebSocket | null = null;
  #gen = 0;
  #seq: number | null = null;
  #sessionId: string | null = null;
  #resumeUrl: string | null = null;
  #baseUrl: string | null = null;
  #info: GatewayBotInfo | undefined;
  #hbTimer: ReturnType<typeof setTimeout> | undefined;
  #hbIntervalMs = 0;
  #acked = true;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  #readyTimer: ReturnType<typeof setTimeout> | undefined;
  /** Reconnects since the last READY/RESUMED: the backoff exponent. */
  #failures = 0;
  /** IDENTIFYs in a row that did not reach READY. */
  #failedIdentifies = 0;
  #identifying = false;
  #established = false;
  #everReady = false;
  #state: "idle" | "running" | "stopped" | "failed" = "idle";
  #closing = new Set<Promise<void>>();
  #limiter: SendLimiter;
  #budget: IdentifyBudget;
  #abort = new AbortController();
  #shardId: number;
  #prefix: string;
  #saveTimer: ReturnType<typeof setTimeout> | undefined;
  #lastSave = -Infinity;
  #savedSeq: number | null = null;
  #saving: Promise<void> = Promise.resolve();

  /** Create a client; nothing happens until {@link GatewayClient.connect}. Throws a `TypeError` on an invalid shard. */
  constructor(options: GatewayClientOptions) {
    this.#o = options;
    const t = options.timing ?? {};
    this.#t = {
      identifyIntervalMs: t.identifyIntervalMs ?? 5000,
      reconnectBaseMs: t.reconnectBaseMs ?? 1000,
      reconnectMaxMs: t.reconnectMaxMs ?? 60_000,
      invalidSessionDelayMs: t.invalidSessionDelayMs,
      maxStartFailures: t.maxStartFailures ?? 5,
      closeTimeoutMs: t.closeTimeoutMs ?? 2000,
      sendLimit: t.sendLimit ?? 110,
      sendWindowMs: t.sendWindowMs ?? 60_000,
      helloTimeoutMs: t.helloTimeoutMs ?? 10_000,
      readyTimeoutMs: t.readyTimeoutMs ?? 30_000,
      identifyBackoffMaxMs: t.identifyBackoffMaxMs ?? 600_000,
      restAttempts: t.restAttempts ?? 4,
      restRetryBaseMs: t.restRetryBaseMs ?? 1000,
      restTimeoutMs: t.restTimeoutMs ?? 10_000,
      sessionSaveIntervalMs: t.sessionSaveIntervalMs ?? 1000,
    };
    const shard = options.shard;
    if (shard !== undefined) {
      const [id, count] = shard;
      if (
        !Number.isInteger(id) || !Number.isInteger(count) || count < 1 || id < 0 || id >= count
      ) {
        throw new TypeError(`shard: expected [id, count] with 0 <= id < count, got ${shard}`);
      }
    }
    this.#shardId = shard?.[0] ?? 0;
    this.#prefix = shard ? `[shard ${shard[0]}/${shard[1]}] ` : "";
    this.#budget = options.identifyBudget ??
      new IdentifyBudget({ intervalMs: this.#t.identifyIntervalMs });
    this.#limiter = new SendLimiter(
      this.#t.sendLimit,
      this.#t.sendWindowMs,
      (p) => this.#rawSend(p),
      () => this.#established,
      options.maxQueuedFrames ?? 1000,
    );
  }

  /** The current session id, once READY arrived. */
  get sessionId(): string | null {
    return this.#sessionId;
  }

  /** The last sequence number received. */
  get sequence(): number | null {
    return this.#seq;
  }

  /** Whether a socket is open and identified or resumed. */
  get connected(): boolean {
    return this.#established && this.#ws?.readyState === WebSocket.OPEN;
  }

  /** What `GET /gateway/bot` answered (URL, recommended shards, IDENTIFY budget), once asked. */
  get gatewayInfo(): GatewayBotInfo | undefined {
    return this.#info;
  }

  /** Frames waiting to be sent. */
  get queued(): number {
    return this.#limiter.queued;
  }

  /** Open the first connection (after loading a stored session, when there is a store). */
  connect(): void {
    if (this.#state !== "idle") return;
    this.#state = "running";
    void this.#start();
  }

  /**
   * Queue a data frame. It is sent within the send budget once a session is
   * established (READY or RESUMED) and survives reconnects while queued.
   * Returns `false` when the client is not running or the queue is full.
   */
  send(op: number, d: unknown, options: SendOptions = {}): boolean {
    if (this.#state !== "running" && this.#state !== "idle") return false;
    const ok = this.#limiter.push(JSON.stringify({ op, d }), options.key);
    if (!ok) {
      this.#log("warn", `send queue full (${this.#limiter.queued} frames); op ${op} dropped`);
    }
    return ok;
  }

  /**
   * Stop for good: no more heartbeats, timers or reconnects. Without a
   * session store the socket closes with 1000 (Discord ends the session);
   * with one it closes with a resumable code and the session is saved.
   */
  async close(): Promise<void> {
    const wasRunning = this.#state === "running";
    if (this.#state !== "failed") this.#state = "stopped";
    this.#abort.abort();
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const keep = wasRunning && this.#o.sessionStore !== undefined && this.#sessionId !== null;
    this.#teardown(keep ? RECONNECT_CLOSE_CODE : 1000, "shutting down");
    this.#limiter.clear();
    if (keep) this.#save(true);
    await this.#settle();
  }

  async #settle(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => timer = setTimeout(r, this.#t.closeTimeoutMs));
    await Promise.race([Promise.all([...this.#closing, this.#saving]), timeout]);
    clearTimeout(timer);
  }

  #log(level: "debug" | "info" | "warn" | "error", message: string): void {
    this.#o.log[level](this.#prefix + message, TAG);
  }

  async #start(): Promise<void> {
    const store = this.#o.sessionStore;
    if (store) {
      try {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const loaded = await Promise.race([
          store.load(this.#shardId),
          new Promise<never>((_, reject) =>
            timer = setTimeout(
              () => reject(new Error(`no answer within ${this.#t.closeTimeoutMs} ms`)),
              this.#t.closeTimeoutMs,
            )
          ),
        ]).finally(() => clearTimeout(timer));
        if (loaded !== undefined) {
          const s = storedSessionSchema.safeParse(loaded);
          if (!s.success) this.#log("warn", "ignored a malformed stored session");
          else {
            this.#sessionId = s.data.sessionId;
            this.#seq = s.data.seq;
            this.#resumeUrl = s.data.resumeUrl;
            this.#savedSeq = s.data.seq;
            this.#log("info", `found a stored session (seq ${s.data.seq}); resuming it`);
          }
        }
      } catch (err) {
        this.#log("warn", `could not load the stored session (${errText(err)}); identifying`);
      }
    }
    await this.#open();
  }

  async #resolveBase(): Promise<string> {
    if (this.#o.gatewayUrl) return this.#o.gatewayUrl;
    if (this.#baseUrl) return this.#baseUrl;
    try {
      this.#info = await fetchGatewayBot(this.#o.fetch, this.#o.apiBase, this.#o.token, {
        attempts: this.#t.restAttempts,
        retryBaseMs: this.#t.restRetryBaseMs,
        timeoutMs: this.#t.restTimeoutMs,
        signal: this.#abort.signal,
        onRetry: (failure, wait) =>
          this.#log("warn", `GET /gateway/bot: ${failure}; retrying in ${wait} ms`),
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
      if (this.#state !== "running") return DEFAULT_GATEWAY_URL;
      if (!isDiscordApiBase(this.#o.apiBase)) {
        // Never send the token to Discord's real gateway when the API base is elsewhere.
        throw new DiscordGatewayError(
          `cannot find the gateway: ${errText(err)}. The API base ${this.#o.apiBase} is not ` +
            "Discord's, so there is no fallback; fix --api-base or set --gateway-url.",
          err instanceof DiscordHttpError ? err.status : undefined,
        );
      }
      this.#log("warn", `${errText(err)}; using ${DEFAULT_GATEWAY_URL}`);
      return DEFAULT_GATEWAY_URL;
    }
    this.#baseUrl = this.#info.url;
    if (this.#info.sessionStartLimit) this.#budget.update(this.#info.sessionStartLimit);
    const l = this.#info.sessionStartLimit;
    this.#log(
      "debug",
      `gateway URL ${this.#baseUrl}; recommended shards ${this.#info.shards ?? "?"}` +
        (l
          ? `; IDENTIFYs left ${l.remaining}/${l.total}, max_concurrency ${l.maxConcurrency}`
          : ""),
    );
    return this.#baseUrl;
  }

  async #open(): Promise<void> {
    if (this.#state !== "running") return;
    let base: string;
    try {
      base = this.#sessionId && this.#resumeUrl ? this.#resumeUrl : await this.#resolveBase();
    } catch (err) {
      this.#fail(err instanceof DiscordGatewayError ? err : new DiscordGatewayError(errText(err)));
      return;
    }
    if (this.#state !== "running") return;
    if (this.#sessionId === null) {
      // Wait for an IDENTIFY slot before connecting, so the gateway never sits
      // idle waiting for us; failed IDENTIFYs in a row stretch the wait.
      const exhausted = this.#budget.remaining !== undefined && this.#budget.remaining <= 0;
      const slot = this.#budget.reserve(this.#shardId);
      const backoff = this.#identifyBackoff();
      const wait = Math.max(slot, backoff);
      if (wait > 0) {
        if (backoff >= slot && this.#failedIdentifies > 0) {
          this.#log(
            this.#failedIdentifies >= 2 ? "warn" : "info",
            `IDENTIFY failed ${this.#failedIdentifies} time(s) in a row; next IDENTIFY in ` +
              `${wait} ms (Discord allows 1000 a day and resets the token beyond that)`,
          );
        } else if (exhausted) {
          this.#log(
            "warn",
            `session_start_limit used up (0 IDENTIFYs left); next IDENTIFY in ${wait} ms, ` +
              "when Discord resets the limit",
          );
        } else this.#log("debug", `waiting ${wait} ms for an IDENTIFY slot`);
        this.#reconnectTimer = setTimeout(() => {
          this.#reconnectTimer = undefined;
          this.#connectTo(base);
        }, wait);
        return;
      }
    }
    this.#connectTo(base);
  }

  #identifyBackoff(): number {
    const n = this.#failedIdentifies;
    if (n <= 0) return 0;
    const base = Math.max(this.#t.identifyIntervalMs, this.#t.reconnectBaseMs);
    const step = Math.min(this.#t.identifyBackoffMaxMs, base * 2 ** Math.min(n - 1, 30));
    return Math.round(step / 2 + Math.random() * step / 2);
  }

  #connectTo(base: string): void {
    if (this.#state !== "running") return;
    let ws: WebSocket;
    let url: string;
    try {
      url = gatewayWsUrl(base);
      ws = new WebSocket(url);
    } catch (err) {
      this.#fail(new DiscordGatewayError(`invalid gateway URL ${base}: ${errText(err)}`));
      return;
    }
    const gen = ++this.#gen;
    this.#ws = ws;
    this.#acked = true;
    this.#established = false;
    this.#identifying = false;
    this.#log("debug", `connecting to ${url}`);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#closing.add(promise);
    this.#helloTimer = setTimeout(() => {
      this.#helloTimer = undefined;
      if (gen !== this.#gen) return;
      this.#log("warn", `no HELLO within ${this.#t.helloTimeoutMs} ms from ${url}; reconnecting`);
      this.#reconnect(this.#sessionId !== null);
    }, this.#t.helloTimeoutMs);
    ws.onmessage = (e) => {
      if (gen === this.#gen) this.#onMessage(e.data);
    };
    ws.onerror = (e) => {
      if (gen === this.#gen) {
        this.#log("debug", `socket error: ${(e as ErrorEvent).message ?? "unknown"}`);
      }
    };
    ws.onclose = (e) => {
      this.#closing.delete(promise);
      resolve();
      if (gen === this.#gen) this.#onClose(e.code, e.reason);
    };
  }

  #rawSend(payload: string): boolean {
    const ws = this.#ws;
    if (ws?.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(payload);
      return true;
    } catch (err) {
      this.#log("warn", `send failed: ${errText(err)}`);
      return false;
    }
  }

  #onMessage(data: unknown): void {
    if (typeof data !== "string") {
      this.#log("warn", "ignored a binary gateway frame (compression is not supported)");
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.#log("warn", "ignored a gateway frame that is not JSON");
      return;
    }
    const env = envelopeSchema.safeParse(json);
    if (!env.success) {
      this.#log("warn", "ignored a gateway frame without an opcode");
      return;
    }
    const { op, d, s, t } = env.data;
    if (typeof s === "number") {
      this.#seq = s;
      if (this.#established) this.#save(false);
    }
    switch (op) {
      case Op.HELLO:
        return this.#onHello(d);
      case Op.HEARTBEAT_ACK:
        this.#acked = true;
        return;
      case Op.HEARTBEAT:
        // The gateway asks for a beat right now.
        this.#limiter.control(JSON.stringify({ op: Op.HEARTBEAT, d: this.#seq }));
        return;
      case Op.RECONNECT:
        this.#log("info", "gateway asked to reconnect (op 7); resuming");
        this.#reconnect(true);
        return;
      case Op.INVALID_SESSION:
        if (d === true) {
          this.#log("info", "session invalidated but resumable (op 9); resuming");
          this.#reconnect(true);
        } else {
          const delay = this.#t.invalidSessionDelayMs ?? 1000 + Math.random() * 4000;
          this.#log("info", "session invalidated (op 9); identifying again");
          this.#reconnect(false, Math.round(delay));
        }
        return;
      case Op.DISPATCH:
        if (typeof t !== "string") return;
        this.#onDispatch(t, d);
        return;
      default:
        this.#log("debug", `ignored op ${op}`);
    }
  }

  #onHello(d: unknown): void {
    clearTimeout(this.#helloTimer);
    this.#helloTimer = undefined;
    const hello = helloSchema.safeParse(d);
    if (!hello.success) {
      this.#log("warn", "HELLO without a valid heartbeat_interval; reconnecting");
      this.#reconnect(this.#sessionId !== null);
      return;
    }
    this.#hbIntervalMs = hello.data.heartbeat_interval;
    this.#limiter.setHeartbeat(this.#hbIntervalMs);
    clearTimeout(this.#hbTimer);
    // First beat after interval * jitter, so many clients do not beat in step.
    this.#hbTimer = setTimeout(() => this.#beat(), this.#hbIntervalMs * Math.random());
    const gen = this.#gen;
    const armReady = (what: string) => () => {
      if (gen !== this.#gen) return;
      clearTimeout(this.#readyTimer);
      this.#readyTimer = setTimeout(() => {
        this.#readyTimer = undefined;
        if (gen !== this.#gen || this.#established) return;
        this.#log("warn", `no ${what} within ${this.#t.readyTimeoutMs} ms; reconnecting`);
        // A RESUME nobody answers is not worth repeating: identify next time.
        this.#reconnect(false);
      }, this.#t.readyTimeoutMs);
    };
    if (this.#sessionId !== null) {
      this.#log("info", `resuming session (seq ${this.#seq})`);
      this.#limiter.control(
        JSON.stringify({
          op: Op.RESUME,
          d: { token: this.#o.token, session_id: this.#sessionId, seq: this.#seq },
        }),
        armReady("RESUMED"),
      );
    } else {
      this.#log("info", "identifying");
      const d: Record<string, unknown> = {
        token: this.#o.token,
        intents: this.#o.intents,
        large_threshold: 250,
        properties: { os: process.platform, browser: "dback", device: "dback" },
      };
      if (this.#o.shard) d.shard = [...this.#o.shard];
      const ready = armReady("READY");
      this.#limiter.control(JSON.stringify({ op: Op.IDENTIFY, d }), () => {
        this.#identifying = true;
        ready();
      });
    }
  }

  #beat(): void {
    this.#hbTimer = undefined;
    if (this.#ws?.readyState !== WebSocket.OPEN) return;
    if (!this.#acked) {
      this.#log("warn", "no heartbeat ACK since the last beat: zombied connection; resuming");
      this.#reconnect(true);
      return;
    }
    this.#acked = false;
    this.#limiter.control(JSON.stringify({ op: Op.HEARTBEAT, d: this.#seq }));
    this.#hbTimer = setTimeout(() => this.#beat(), this.#hbIntervalMs);
  }

  #onDispatch(t: string, d: unknown): void {
    let session: "ready" | "resumed" | undefined;
    if (t === "READY") {
      const ready = readySchema.safeParse(d);
      if (!ready.success) {
        this.#log("error", "READY without a session id; reconnecting");
        this.#reconnect(false);
        return;
      }
      this.#sessionId = ready.data.session_id;
      this.#resumeUrl = ready.data.resume_gateway_url ?? null;
      this.#everReady = true;
      this.#log(
        "info",
        `ready as ${ready.data.user?.username ?? "?"} (session ${this.#sessionId})`,
      );
      session = "ready";
    } else if (t === "RESUMED") {
      this.#log("info", `resumed (seq ${this.#seq})`);
      session = "resumed";
    }
    if (session) {
      clearTimeout(this.#readyTimer);
      this.#readyTimer = undefined;
      this.#failures = 0;
      this.#failedIdentifies = 0;
      this.#identifying = false;
      this.#established = true;
      this.#save(true);
    }
    try {
      this.#o.onDispatch(t, d);
    } catch (err) {
      this.#log("error", `handling ${t} failed: ${errText(err)}`);
    }
    if (session) {
      try {
        this.#o.onSession?.(session);
      } catch (err) {
        this.#log("error", `onSession(${session}) failed: ${errText(err)}`);
      }
      this.#limiter.flush();
    }
  }

  #onClose(code: number, reason: string): void {
    this.#ws = null;
    if (this.#state !== "running") {
      this.#stopTimers();
      return;
    }
    const fatal = FATAL_CLOSE_CODES[code];
    if (fatal) {
      this.#fail(new DiscordGatewayError(`Gateway closed with ${code}: ${fatal}`, code));
      return;
    }
    this.#log("warn", `gateway closed with ${code}${reason ? ` (${reason})` : ""}`);
    this.#reconnect(!NEW_SESSION_CLOSE_CODES.has(code), 0, code, reason);
  }

  #backoff(): number {
    if (this.#failures <= 0) return 0;
    const step = Math.min(
      this.#t.reconnectMaxMs,
      this.#t.reconnectBaseMs * 2 ** Math.min(this.#failures - 1, 20),
    );
    return Math.round(step / 2 + Math.random() * step / 2);
  }

  #forgetSession(): void {
    const had = this.#sessionId !== null;
    this.#sessionId = null;
    this.#resumeUrl = null;
    this.#seq = null;
    if (had && this.#o.sessionStore) this.#save(true);
  }

  /**
   * Drop the current socket (keeping the session when `resume`) and open a
   * new one. Every path counts: the wait grows (jittered, capped) with each
   * reconnect since the last READY/RESUMED, and is at least `minDelay`.
   */
  #reconnect(resume: boolean, minDelay = 0, code?: number, reason?: string): void {
    if (this.#identifying) this.#failedIdentifies++;
    this.#teardown(RECONNECT_CLOSE_CODE, "reconnecting");
    if (!resume) this.#forgetSession();
    if (this.#state !== "running") return;
    this.#failures++;
    if (!this.#everReady && this.#failures >= this.#t.maxStartFailures) {
      const last = code === undefined ? "" : ` (last close ${code}${reason ? ` ${reason}` : ""})`;
      this.#fail(
        new DiscordGatewayError(
          `could not establish a gateway session after ${this.#failures} attempts${last}; ` +
            "check the gateway URL and network",
          code,
        ),
      );
      return;
    }
    const delay = Math.max(minDelay, this.#backoff());
    this.#log("info", `reconnecting in ${delay} ms (attempt ${this.#failures})`);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delay);
  }

  #stopTimers(): void {
    clearTimeout(this.#hbTimer);
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#readyTimer);
    this.#hbTimer =
      this.#reconnectTimer =
      this.#helloTimer =
      this.#readyTimer =
        undefined;
    // Heartbeats and IDENTIFY/RESUME belong to the old socket; data frames wait for the next session.
    this.#limiter.dropControl();
  }

  #teardown(code: number, reason: string): void {
    this.#stopTimers();
    this.#established = false;
    this.#identifying = false;
    const ws = this.#ws;
    this.#ws = null;
    this.#gen++; // the old socket's events are ignored from now on
    if (ws && ws.readyState !== WebSocket.CLOSED && ws.readyState !== WebSocket.CLOSING) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  /** Save the session to the store: now when `now`, else at most once per interval. */
  #save(now: boolean): void {
    const store = this.#o.sessionStore;
    if (!store) return;
    if (!now) {
      if (this.#saveTimer !== undefined || this.#seq === this.#savedSeq) return;
      const wait = this.#lastSave + this.#t.sessionSaveIntervalMs - Date.now();
      if (wait > 0) {
        this.#saveTimer = setTimeout(() => {
          this.#saveTimer = undefined;
          this.#save(true);
        }, wait);
        return;
      }
    }
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    this.#lastSave = Date.now();
    const session: GatewaySession | undefined = this.#sessionId !== null && this.#resumeUrl !== null
      ? { sessionId: this.#sessionId, seq: this.#seq ?? 0, resumeUrl: this.#resumeUrl }
      : undefined;
    this.#savedSeq = session?.seq ?? null;
    // Saves run one after another, so an older one never lands last.
    this.#saving = this.#saving.then(() => store.save(this.#shardId, session)).catch((err) =>
      this.#log("warn", `could not save the session (${errText(err)})`)
    );
  }

  #fail(err: DiscordGatewayError): void {
    if (this.#state !== "running") return;
    this.#state = "failed";
    this.#abort.abort();
    this.#forgetSession();
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    this.#teardown(1000, "fatal error");
    this.#limiter.clear();
    this.#log("error", err.message);
    this.#o.onFatal(err);
  }
}
