/**
 * A minimal Discord Gateway v10 client (JSON, no compression): HELLO →
 * IDENTIFY or RESUME, heartbeats, op 7 RECONNECT, op 9 INVALID SESSION, no
 * retry on fatal close codes; every reconnect path backs off until a READY or
 * RESUMED proves the gateway healthy; deadlines for HELLO and READY/RESUMED;
 * a send queue that survives reconnects within the send budget; the IDENTIFY
 * budget; sharding; an optional session store so another process can RESUME.
 * It knows nothing about guilds: every dispatch goes to `onDispatch`.
 *
 * @module
 */
import { jitteredBackoff } from "../_backoff.ts";
import { errorText } from "../_errors.ts";
import type { GatewayBotInfo } from "./_rest.ts";
import { type Envelope, helloSchema, Op, readySchema } from "./_schemas.ts";
import { GatewaySocket, Heartbeat, NamedTimers } from "./_gateway_socket.ts";
import {
  checkShard,
  DiscordGatewayError,
  FATAL_CLOSE_CODES,
  type GatewayClientOptions,
  identifyFrame,
  NEW_SESSION_CLOSE_CODES,
  RECONNECT_CLOSE_CODE,
  type ResolvedTiming,
  resolveTiming,
  type SendOptions,
} from "./_gateway_types.ts";
import { resolveGateway } from "./_gateway_url.ts";
import { IdentifyBudget } from "./_identify_budget.ts";
import { SendLimiter } from "./_send_limiter.ts";
import { SessionKeeper } from "./_session_keeper.ts";

const TAG = "discord";

/** One gateway session, kept alive across reconnects until {@link GatewayClient.close}. */
export class GatewayClient {
  #o: GatewayClientOptions;
  #t: ResolvedTiming;
  #sock: GatewaySocket | null = null;
  #baseUrl: string | null = null;
  #info: GatewayBotInfo | undefined;
  #heartbeat: Heartbeat;
  /** One-shot timers of the current connection attempt. */
  #timers = new NamedTimers<"reconnect" | "hello" | "ready" | "identify">();
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
  #session: SessionKeeper;

  /** Create a client; nothing happens until {@link GatewayClient.connect}. Throws a `TypeError` on an invalid shard. */
  constructor(options: GatewayClientOptions) {
    this.#o = options;
    this.#t = resolveTiming(options.timing);
    const shard = checkShard(options.shard);
    this.#shardId = shard?.[0] ?? 0;
    this.#prefix = shard ? `[shard ${shard[0]}/${shard[1]}] ` : "";
    this.#budget = options.identifyBudget ??
      new IdentifyBudget({ intervalMs: this.#t.identifyIntervalMs });
    this.#limiter = new SendLimiter(
      this.#t.sendLimit,
      this.#t.sendWindowMs,
      (p) => this.#sock?.send(p) ?? false,
      () => this.#established,
      options.maxQueuedFrames ?? 1000,
    );
    this.#heartbeat = new Heartbeat(
      () => this.#limiter.control(JSON.stringify({ op: Op.HEARTBEAT, d: this.#session.seq })),
      () => {
        this.#log("warn", "no heartbeat ACK since the last beat: zombied connection; resuming");
        this.#reconnect(true);
      },
      () => this.#sock?.open === true,
    );
    this.#session = new SessionKeeper({
      store: options.sessionStore,
      shard: this.#shardId,
      shards: shard?.[1] ?? 1,
      intervalMs: this.#t.sessionSaveIntervalMs,
      loadTimeoutMs: this.#t.closeTimeoutMs,
      warn: (m) => this.#log("warn", m),
    });
  }

  /** The current session id, once READY arrived. */
  get sessionId(): string | null {
    return this.#session.id;
  }

  /** The last sequence number received. */
  get sequence(): number | null {
    return this.#session.seq;
  }

  /** Whether a socket is open and identified or resumed. */
  get connected(): boolean {
    return this.#established && this.#sock?.open === true;
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
    this.#session.cancel();
    const keep = wasRunning && this.#session.stored && this.#session.id !== null;
    this.#teardown(keep ? RECONNECT_CLOSE_CODE : 1000, "shutting down");
    this.#limiter.clear();
    if (keep) this.#session.save(true);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => timer = setTimeout(r, this.#t.closeTimeoutMs));
    await Promise.race([Promise.all([...this.#closing, this.#session.saving]), timeout]);
    clearTimeout(timer);
  }

  #log(level: "debug" | "info" | "warn" | "error", message: string): void {
    this.#o.log[level](this.#prefix + message, TAG);
  }

  async #start(): Promise<void> {
    if (await this.#session.restore()) {
      this.#log("info", `found a stored session (seq ${this.#session.seq}); resuming it`);
    }
    await this.#open();
  }

  async #resolveBase(): Promise<string> {
    if (this.#o.gatewayUrl ?? this.#baseUrl) return (this.#o.gatewayUrl ?? this.#baseUrl)!;
    const found = await resolveGateway({
      ...this.#o,
      timing: this.#t,
      signal: this.#abort.signal,
      running: () => this.#state === "running",
      log: (level, message) => this.#log(level, message),
    });
    if (!found.info) return found.url;
    this.#info = found.info;
    this.#baseUrl = found.url;
    if (found.info.sessionStartLimit) this.#budget.update(found.info.sessionStartLimit);
    return found.url;
  }

  async #open(): Promise<void> {
    if (this.#state !== "running") return;
    let base: string;
    try {
      base = this.#session.id && this.#session.resumeUrl
        ? this.#session.resumeUrl
        : await this.#resolveBase();
    } catch (err) {
      this.#fail(
        err instanceof DiscordGatewayError ? err : new DiscordGatewayError(errorText(err)),
      );
      return;
    }
    if (this.#state !== "running") return;
    if (this.#session.id === null) {
      // Wait for an IDENTIFY slot before connecting, so the gateway never sits
      // idle waiting for us; failed IDENTIFYs in a row stretch the wait.
      const { wait, level, message } = this.#budget.plan(this.#shardId, this.#failedIdentifies, {
        baseMs: Math.max(this.#t.identifyIntervalMs, this.#t.reconnectBaseMs),
        maxMs: this.#t.identifyBackoffMaxMs,
      });
      if (wait > 0) {
        this.#log(level, message);
        this.#timers.set("reconnect", () => {
          this.#connectTo(base);
        }, wait);
        return;
      }
    }
    this.#connectTo(base);
  }

  #connectTo(base: string): void {
    if (this.#state !== "running") return;
    let sock: GatewaySocket;
    try {
      sock = new GatewaySocket(base, {
        onFrame: (env) => this.#onFrame(env),
        onClose: (code, reason) => this.#onClose(code, reason),
        log: (level, message) => this.#log(level, message),
      });
    } catch (err) {
      this.#fail(new DiscordGatewayError(`invalid gateway URL ${base}: ${errorText(err)}`));
      return;
    }
    this.#sock = sock;
    this.#established = false;
    this.#identifying = false;
    this.#log("debug", `connecting to ${sock.url}`);
    this.#closing.add(sock.closed);
    void sock.closed.then(() => this.#closing.delete(sock.closed));
    this.#timers.set("hello", () => {
      if (sock !== this.#sock) return;
      this.#log(
        "warn",
        `no HELLO within ${this.#t.helloTimeoutMs} ms from ${sock.url}; reconnecting`,
      );
      this.#reconnect(this.#session.id !== null);
    }, this.#t.helloTimeoutMs);
  }

  #onFrame({ op, d, s, t }: Envelope): void {
    if (typeof s === "number") {
      this.#session.seq = s;
      if (this.#established) this.#session.save(false);
    }
    switch (op) {
      case Op.HELLO:
        return this.#onHello(d);
      case Op.HEARTBEAT_ACK:
        this.#heartbeat.ack();
        return;
      case Op.HEARTBEAT:
        // The gateway asks for a beat right now.
        this.#heartbeat.beatNow();
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
    this.#timers.cancel("hello");
    const hello = helloSchema.safeParse(d);
    if (!hello.success) {
      this.#log("warn", "HELLO without a valid heartbeat_interval; reconnecting");
      this.#reconnect(this.#session.id !== null);
      return;
    }
    this.#limiter.setHeartbeat(hello.data.heartbeat_interval);
    this.#heartbeat.start(hello.data.heartbeat_interval);
    const sock = this.#sock;
    const armReady = (what: string) => () => {
      if (sock !== this.#sock) return;
      this.#timers.set("ready", () => {
        if (sock !== this.#sock || this.#established) return;
        this.#log("warn", `no ${what} within ${this.#t.readyTimeoutMs} ms; reconnecting`);
        // A RESUME nobody answers is not worth repeating: identify next time.
        this.#reconnect(false);
      }, this.#t.readyTimeoutMs);
    };
    if (this.#session.id !== null) {
      this.#log("info", `resuming session (seq ${this.#session.seq})`);
      const d = { token: this.#o.token, session_id: this.#session.id, seq: this.#session.seq };
      this.#limiter.control(JSON.stringify({ op: Op.RESUME, d }), armReady("RESUMED"));
      return;
    }
    // The slot was reserved before connecting; a socket that opened late must
    // still keep the interval from the IDENTIFY that was really sent.
    const hold = this.#budget.holdoff(this.#shardId);
    if (hold > 0) this.#log("debug", `IDENTIFY held ${hold} ms (interval since the last one)`);
    this.#timers.set("identify", () => {
      if (sock !== this.#sock) return;
      this.#log("info", "identifying");
      const ready = armReady("READY");
      const frame = identifyFrame(this.#o.token, this.#o.intents, this.#o.shard);
      this.#limiter.control(frame, () => {
        this.#budget.sent(this.#shardId);
        this.#identifying = true;
        ready();
      });
    }, hold);
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
      this.#session.begin(ready.data.session_id, ready.data.resume_gateway_url ?? null);
      this.#everReady = true;
      this.#log(
        "info",
        `ready as ${ready.data.user?.username ?? "?"} (session ${ready.data.session_id})`,
      );
      session = "ready";
    } else if (t === "RESUMED") {
      this.#log("info", `resumed (seq ${this.#session.seq})`);
      session = "resumed";
    }
    if (session) {
      this.#timers.cancel("ready");
      this.#failures = 0;
      this.#failedIdentifies = 0;
      this.#identifying = false;
      this.#established = true;
      this.#session.save(true);
    }
    try {
      this.#o.onDispatch(t, d);
    } catch (err) {
      this.#log("error", `handling ${t} failed: ${errorText(err)}`);
    }
    if (session) {
      try {
        this.#o.onSession?.(session);
      } catch (err) {
        this.#log("error", `onSession(${session}) failed: ${errorText(err)}`);
      }
      this.#limiter.flush();
    }
  }

  #onClose(code: number, reason: string): void {
    this.#sock = null;
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

  /**
   * Drop the current socket (keeping the session when `resume`) and open a
   * new one. Every path counts: the wait grows (jittered, capped) with each
   * reconnect since the last READY/RESUMED, and is at least `minDelay`.
   */
  #reconnect(resume: boolean, minDelay = 0, code?: number, reason?: string): void {
    if (this.#identifying) this.#failedIdentifies++;
    this.#teardown(RECONNECT_CLOSE_CODE, "reconnecting");
    if (!resume) this.#session.forget();
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
    const backoff = jitteredBackoff(
      this.#failures,
      this.#t.reconnectBaseMs,
      this.#t.reconnectMaxMs,
    );
    const delay = Math.max(minDelay, backoff);
    this.#log("info", `reconnecting in ${delay} ms (attempt ${this.#failures})`);
    this.#timers.set("reconnect", () => {
      void this.#open();
    }, delay);
  }

  #stopTimers(): void {
    this.#heartbeat.stop();
    this.#timers.clear();
    // Heartbeats and IDENTIFY/RESUME belong to the old socket; data frames wait for the next session.
    this.#limiter.dropControl();
  }

  #teardown(code: number, reason: string): void {
    this.#stopTimers();
    this.#established = false;
    this.#identifying = false;
    // The old socket's events are ignored from now on.
    this.#sock?.detach(code, reason);
    this.#sock = null;
  }

  #fail(err: DiscordGatewayError): void {
    if (this.#state !== "running") return;
    this.#state = "failed";
    this.#abort.abort();
    this.#session.forget();
    this.#session.cancel();
    this.#teardown(1000, "fatal error");
    this.#limiter.clear();
    this.#log("error", err.message);
    this.#o.onFatal(err);
  }
}
