/**
 * A minimal Discord Gateway v10 client (JSON encoding, no compression) over
 * Deno's built-in `WebSocket`: HELLO → IDENTIFY or RESUME, heartbeats with
 * initial jitter, zombied-connection detection, op 7 RECONNECT, op 9 INVALID
 * SESSION, reconnects with exponential backoff, no retry on fatal close
 * codes, a send limiter (120 frames per 60 s) and identify spacing.
 *
 * It knows nothing about guilds: every dispatch goes to `onDispatch`.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import {
  DEFAULT_GATEWAY_URL,
  DiscordHttpError,
  fetchGatewayUrl,
  type FetchLike,
  gatewayWsUrl,
} from "./rest.ts";
import { envelopeSchema, helloSchema, Op, readySchema } from "./schemas.ts";

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
  4010: "Invalid shard: this source does not shard; do not set a shard.",
  4011: "Sharding required: the bot is in too many guilds for one connection " +
    "(more than 2500); this source does not shard.",
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
  /** Least time between two IDENTIFY frames, ms. Default 5000. */
  identifyIntervalMs?: number;
  /** First reconnect backoff step, ms. Default 1000. */
  reconnectBaseMs?: number;
  /** Largest reconnect backoff, ms. Default 60000. */
  reconnectMaxMs?: number;
  /** Wait after INVALID_SESSION (d=false) before identifying again, ms. Default random 1000–5000. */
  invalidSessionDelayMs?: number;
  /** Connection failures in a row before the first READY that give up. Default 5. */
  maxStartFailures?: number;
  /** How long `close()` waits for sockets to finish closing, ms. Default 2000. */
  closeTimeoutMs?: number;
  /** Frames per send window. Default 120. */
  sendLimit?: number;
  /** Send window, ms. Default 60000. */
  sendWindowMs?: number;
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
  /** Timing knobs. */
  timing?: GatewayTiming;
}

const TAG = "discord";

/** Keeps to a frame budget per window; priority frames (heartbeats) jump the queue and get a reserve. */
export class SendLimiter {
  #limit: number;
  #windowMs: number;
  #reserve: number;
  #send: (payload: string) => void;
  #stamps: number[] = [];
  #queue: Array<{ payload: string; priority: boolean }> = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `send` is called for every frame when the budget allows. */
  constructor(limit: number, windowMs: number, send: (payload: string) => void) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#reserve = Math.min(5, Math.floor(limit / 10));
    this.#send = send;
  }

  /** Frames waiting for budget. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Send now if the budget allows, else queue. */
  push(payload: string, priority = false): void {
    if (priority) this.#queue.unshift({ payload, priority });
    else this.#queue.push({ payload, priority });
    this.#flush();
  }

  /** Drop the queue and the budget history (a new connection has a new budget). */
  clear(): void {
    this.#queue = [];
    this.#stamps = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #flush(): void {
    const now = Date.now();
    while (this.#stamps.length && this.#stamps[0] <= now - this.#windowMs) this.#stamps.shift();
    while (this.#queue.length) {
      const next = this.#queue[0];
      const budget = next.priority ? this.#limit : this.#limit - this.#reserve;
      if (this.#stamps.length >= budget) break;
      this.#queue.shift();
      this.#stamps.push(now);
      this.#send(next.payload);
    }
    if (this.#queue.length && this.#timer === undefined) {
      const wait = Math.max(1, this.#stamps[0] + this.#windowMs - now);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flush();
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
  #hbTimer: ReturnType<typeof setTimeout> | undefined;
  #hbIntervalMs = 0;
  #acked = true;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #identifyTimer: ReturnType<typeof setTimeout> | undefined;
  #lastIdentify = -Infinity;
  #failures = 0;
  #everReady = false;
  #state: "idle" | "running" | "stopped" | "failed" = "idle";
  #closing = new Set<Promise<void>>();
  #limiter: SendLimiter;

  /** Create a client; nothing happens until {@link GatewayClient.connect}. */
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
      sendLimit: t.sendLimit ?? 120,
      sendWindowMs: t.sendWindowMs ?? 60_000,
    };
    this.#limiter = new SendLimiter(
      this.#t.sendLimit,
      this.#t.sendWindowMs,
      (p) => this.#rawSend(p),
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
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** Open the first connection. */
  connect(): void {
    if (this.#state !== "idle") return;
    this.#state = "running";
    void this.#open();
  }

  /** Queue a frame for the current connection. Returns `false` when there is none. */
  send(op: number, d: unknown): boolean {
    if (this.#state !== "running" || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#limiter.push(JSON.stringify({ op, d }));
    return true;
  }

  /** Stop for good: no more heartbeats, timers or reconnects; the socket is closed with 1000. */
  async close(): Promise<void> {
    if (this.#state !== "failed") this.#state = "stopped";
    this.#teardown(1000, "shutting down");
    await this.#settle();
  }

  async #settle(): Promise<void> {
    if (this.#closing.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => timer = setTimeout(r, this.#t.closeTimeoutMs));
    await Promise.race([Promise.all([...this.#closing]), timeout]);
    clearTimeout(timer);
  }

  async #resolveBase(): Promise<string> {
    if (this.#o.gatewayUrl) return this.#o.gatewayUrl;
    if (this.#baseUrl) return this.#baseUrl;
    try {
      this.#baseUrl = await fetchGatewayUrl(this.#o.fetch, this.#o.apiBase, this.#o.token);
      this.#o.log.debug(`gateway URL from ${this.#o.apiBase}/gateway/bot: ${this.#baseUrl}`, TAG);
    } catch (err) {
      if (err instanceof DiscordHttpError && err.status === 401) {
        throw new DiscordGatewayError(
          `Discord rejected the bot token (GET /gateway/bot answered HTTP 401). ${
            FATAL_CLOSE_CODES[4004]
          }`,
          4004,
        );
      }
      this.#o.log.warn(
        `cannot ask ${this.#o.apiBase}/gateway/bot (${errText(err)}); using ${DEFAULT_GATEWAY_URL}`,
        TAG,
      );
      return DEFAULT_GATEWAY_URL;
    }
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
    this.#limiter.clear();
    this.#o.log.debug(`connecting to ${url}`, TAG);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#closing.add(promise);
    ws.onmessage = (e) => {
      if (gen === this.#gen) this.#onMessage(e.data);
    };
    ws.onerror = (e) => {
      if (gen === this.#gen) {
        this.#o.log.debug(`socket error: ${(e as ErrorEvent).message ?? "unknown"}`, TAG);
      }
    };
    ws.onclose = (e) => {
      this.#closing.delete(promise);
      resolve();
      if (gen === this.#gen) this.#onClose(e.code, e.reason);
    };
  }

  #rawSend(payload: string): void {
    const ws = this.#ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    try {
      ws.send(payload);
    } catch (err) {
      this.#o.log.warn(`send failed: ${errText(err)}`, TAG);
    }
  }

  #onMessage(data: unknown): void {
    if (typeof data !== "string") {
      this.#o.log.warn("ignored a binary gateway frame (compression is not supported)", TAG);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.#o.log.warn("ignored a gateway frame that is not JSON", TAG);
      return;
    }
    const env = envelopeSchema.safeParse(json);
    if (!env.success) {
      this.#o.log.warn("ignored a gateway frame without an opcode", TAG);
      return;
    }
    const { op, d, s, t } = env.data;
    if (typeof s === "number") this.#seq = s;
    switch (op) {
      case Op.HELLO:
        return this.#onHello(d);
      case Op.HEARTBEAT_ACK:
        this.#acked = true;
        return;
      case Op.HEARTBEAT:
        // The gateway asks for a beat right now.
        this.#limiter.push(JSON.stringify({ op: Op.HEARTBEAT, d: this.#seq }), true);
        return;
      case Op.RECONNECT:
        this.#o.log.info("gateway asked to reconnect (op 7); resuming", TAG);
        this.#reconnect(true, 0);
        return;
      case Op.INVALID_SESSION:
        if (d === true) {
          this.#o.log.info("session invalidated but resumable (op 9); resuming", TAG);
          this.#reconnect(true, 0);
        } else {
          const delay = this.#t.invalidSessionDelayMs ?? 1000 + Math.random() * 4000;
          this.#o.log.info(
            `session invalidated (op 9); identifying again in ${Math.round(delay)} ms`,
            TAG,
          );
          this.#reconnect(false, delay);
        }
        return;
      case Op.DISPATCH:
        if (typeof t !== "string") return;
        this.#onDispatch(t, d);
        return;
      default:
        this.#o.log.debug(`ignored op ${op}`, TAG);
    }
  }

  #onHello(d: unknown): void {
    const hello = helloSchema.safeParse(d);
    if (!hello.success) {
      this.#o.log.warn("HELLO without a valid heartbeat_interval; reconnecting", TAG);
      this.#reconnect(this.#sessionId !== null);
      return;
    }
    this.#hbIntervalMs = hello.data.heartbeat_interval;
    clearTimeout(this.#hbTimer);
    // First beat after interval * jitter, so many clients do not beat in step.
    this.#hbTimer = setTimeout(() => this.#beat(), this.#hbIntervalMs * Math.random());
    if (this.#sessionId !== null) {
      this.#o.log.info(`resuming session (seq ${this.#seq})`, TAG);
      this.#limiter.push(
        JSON.stringify({
          op: Op.RESUME,
          d: { token: this.#o.token, session_id: this.#sessionId, seq: this.#seq },
        }),
      );
    } else {
      this.#scheduleIdentify();
    }
  }

  #scheduleIdentify(): void {
    clearTimeout(this.#identifyTimer);
    const wait = Math.max(0, this.#lastIdentify + this.#t.identifyIntervalMs - Date.now());
    const go = () => {
      this.#identifyTimer = undefined;
      if (this.#state !== "running") return;
      this.#lastIdentify = Date.now();
      this.#o.log.info("identifying", TAG);
      this.#limiter.push(JSON.stringify({
        op: Op.IDENTIFY,
        d: {
          token: this.#o.token,
          intents: this.#o.intents,
          large_threshold: 250,
          properties: { os: Deno.build.os, browser: "dback", device: "dback" },
        },
      }));
    };
    if (wait === 0) go();
    else this.#identifyTimer = setTimeout(go, wait);
  }

  #beat(): void {
    this.#hbTimer = undefined;
    if (this.#ws?.readyState !== WebSocket.OPEN) return;
    if (!this.#acked) {
      this.#o.log.warn("no heartbeat ACK since the last beat: zombied connection; resuming", TAG);
      this.#failures++;
      this.#reconnect(true);
      return;
    }
    this.#acked = false;
    this.#limiter.push(JSON.stringify({ op: Op.HEARTBEAT, d: this.#seq }), true);
    this.#hbTimer = setTimeout(() => this.#beat(), this.#hbIntervalMs);
  }

  #onDispatch(t: string, d: unknown): void {
    if (t === "READY") {
      const ready = readySchema.safeParse(d);
      if (!ready.success) {
        this.#o.log.error("READY without a session id; reconnecting", TAG);
        this.#reconnect(false);
        return;
      }
      this.#sessionId = ready.data.session_id;
      this.#resumeUrl = ready.data.resume_gateway_url ?? null;
      this.#failures = 0;
      this.#everReady = true;
      this.#o.log.info(
        `ready as ${ready.data.user?.username ?? "?"} (session ${this.#sessionId})`,
        TAG,
      );
    } else if (t === "RESUMED") {
      this.#failures = 0;
      this.#o.log.info(`resumed (seq ${this.#seq})`, TAG);
    }
    try {
      this.#o.onDispatch(t, d);
    } catch (err) {
      this.#o.log.error(`handling ${t} failed: ${errText(err)}`, TAG);
    }
  }

  #onClose(code: number, reason: string): void {
    this.#stopTimers();
    this.#ws = null;
    if (this.#state !== "running") return;
    const fatal = FATAL_CLOSE_CODES[code];
    if (fatal) {
      this.#fail(new DiscordGatewayError(`Gateway closed with ${code}: ${fatal}`, code));
      return;
    }
    if (NEW_SESSION_CLOSE_CODES.has(code)) this.#forgetSession();
    this.#failures++;
    if (!this.#everReady && this.#failures >= this.#t.maxStartFailures) {
      this.#fail(
        new DiscordGatewayError(
          `could not establish a gateway session after ${this.#failures} attempts ` +
            `(last close ${code}${reason ? ` ${reason}` : ""}); check the gateway URL and network`,
          code,
        ),
      );
      return;
    }
    const delay = this.#backoff();
    this.#o.log.warn(
      `gateway closed with ${code}${reason ? ` (${reason})` : ""}; reconnecting in ${delay} ms`,
      TAG,
    );
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delay);
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
    this.#sessionId = null;
    this.#resumeUrl = null;
    this.#seq = null;
  }

  /** Drop the current socket (without ending the session) and open a new one after `delay`. */
  #reconnect(resume: boolean, delay = this.#backoff()): void {
    this.#teardown(RECONNECT_CLOSE_CODE, "reconnecting");
    if (!resume) this.#forgetSession();
    if (this.#state !== "running") return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delay);
  }

  #stopTimers(): void {
    clearTimeout(this.#hbTimer);
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#identifyTimer);
    this.#hbTimer = this.#reconnectTimer = this.#identifyTimer = undefined;
    this.#limiter.clear();
  }

  #teardown(code: number, reason: string): void {
    this.#stopTimers();
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

  #fail(err: DiscordGatewayError): void {
    if (this.#state !== "running") return;
    this.#state = "failed";
    this.#teardown(1000, "fatal error");
    this.#o.log.error(err.message, TAG);
    this.#o.onFatal(err);
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
