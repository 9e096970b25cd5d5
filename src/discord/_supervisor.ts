/**
 * Keeps a Discord gateway source trying (internal), for the command line:
 * the server listens first and serves its page and `/healthz` while this
 * connects. A start that fails for a reason that may pass (network down,
 * DNS, Discord answering 5xx, a gateway that never says READY) is retried
 * with a capped backoff for as long as the process runs, each failure logged
 * with its cause. Only Discord's definite answers — a rejected token,
 * disallowed or invalid intents, sharding problems — end it, through
 * `onFatal`, once.
 *
 * @module
 */
import { backoffStep } from "../_backoff.ts";
import type { DataSource, EventSink, SourceContext } from "../source.ts";
import type { DiscordUser, ServerMap, UserMap } from "../protocol.ts";
import { errorText } from "../_errors.ts";

/** Close codes (and their HTTP stand-ins) that no retry can fix. */
export const FATAL_CODES: ReadonlySet<number> = new Set([4004, 4010, 4011, 4012, 4013, 4014]);

/** The part of `DiscordGatewaySource` the supervisor drives. */
export interface GatewayLike extends DataSource {
  start(sink?: EventSink, context?: SourceContext): Promise<void>;
  stop(): Promise<void>;
  readonly ready: boolean;
}

/** How the supervisor retries and reports. */
export interface SupervisorOptions {
  /** A fresh source for each attempt (a stopped one does not start again). */
  create(onError: (err: Error & { code?: number }) => void): GatewayLike;
  /** Told about each failed attempt and the wait before the next. */
  warn(message: string): void;
  /** Told once when Discord gave a definite answer (the process should end). */
  onFatal(err: Error): void;
  /** Told once when the first attempt that works is ready. */
  onReady?(): void;
  /** First wait, ms (doubles per failure). Default 1000. */
  retryBaseMs?: number;
  /** Longest wait, ms. Default 60000. */
  retryMaxMs?: number;
  /**
   * Let `start()` resolve once ready (rejects on a definite answer): for a
   * caller that needs the data when `start()` returns (a cluster publisher).
   * It still connects only after {@link GatewaySupervisor.begin}, so the port
   * is bound first however soon the lease is won. Default `false`.
   */
  startWaitsForReady?: boolean;
}

/**
 * A data source that starts its gateway source only when told
 * ({@link GatewaySupervisor.begin}, after the port is bound) and keeps
 * retrying it.
 *
 * @example
 * ```ts
 * import { type GatewayLike, GatewaySupervisor } from "./_supervisor.ts";
 * const warnings: string[] = [];
 * let attempts = 0;
 * const supervisor = new GatewaySupervisor({
 *   create: () => {
 *     const failing = ++attempts === 1;
 *     const source = {
 *       ready: false,
 *       start() {
 *         if (failing) throw new Error("fetch failed", { cause: new Error("dns error") });
 *         source.ready = true;
 *         return Promise.resolve();
 *       },
 *       stop: () => Promise.resolve(),
 *       getServerData: () => ({}),
 *       getUserData: () => ({}),
 *     };
 *     return source as unknown as GatewayLike;
 *   },
 *   warn: (message) => warnings.push(message),
 *   onFatal: () => {},
 *   retryBaseMs: 1,
 *   startWaitsForReady: true,
 * });
 * const started = supervisor.start({ emit() {} });
 * supervisor.begin(); // the port is bound: connect now
 * await started;
 * if (supervisor.state().state !== "ready" || attempts !== 2) throw new Error("not retried");
 * if (!warnings[0].includes("fetch failed: caused by dns error")) throw new Error(warnings[0]);
 * await supervisor.stop();
 * ```
 */
export class GatewaySupervisor implements DataSource {
  #o: SupervisorOptions;
  #current: GatewayLike | undefined;
  #sink: EventSink | undefined;
  #context: SourceContext | undefined;
  #state: "waiting" | "connecting" | "retrying" | "ready" | "failed" | "stopped" = "waiting";
  #attempts = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  #wanted: boolean;
  #ready = Promise.withResolvers<void>();

  /** Nothing connects until {@link GatewaySupervisor.begin}. */
  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#wanted = false;
    this.#ready.promise.catch(() => {}); // a caller that does not wait must not see it unhandled
  }

  /** The source of the current attempt. */
  get current(): GatewayLike | undefined {
    return this.#current;
  }

  /** `discord` and where it stands. */
  state(): { kind: string; state: string } {
    return { kind: "discord", state: this.#state };
  }

  /** Keep the sink; the server calls this before it listens, so nothing connects yet. */
  start(sink: EventSink, context?: SourceContext): Promise<void> {
    this.#sink = sink;
    this.#context = context;
    this.#go();
    return this.#o.startWaitsForReady ? this.#ready.promise : Promise.resolve();
  }

  /** Connect (once the port is bound, and the sink is known), and keep at it. */
  begin(): void {
    this.#wanted = true;
    this.#go();
  }

  #go(): void {
    if (this.#wanted && this.#sink && this.#state === "waiting") void this.#loop();
  }

  async #loop(): Promise<void> {
    for (;;) {
      if (this.#state === "stopped" || this.#state === "failed") return;
      this.#state = this.#attempts === 0 ? "connecting" : "retrying";
      this.#attempts++;
      let lateError: ((err: Error & { code?: number }) => void) | undefined;
      const src = this.#current = this.#o.create((err) => lateError?.(err));
      try {
        await src.start(this.#sink, this.#context);
        if (this.#stopped()) return;
        this.#state = "ready";
        this.#attempts = 0;
        // After READY the source reconnects by itself; only a definite answer ends it.
        lateError = (err) => {
          if (err.code !== undefined && FATAL_CODES.has(err.code)) return this.#failed(err);
          if (this.#state !== "ready" || this.#current !== src) return;
          this.#o.warn(`discord: the connection failed: ${errorText(err)}; starting again`);
          void src.stop().catch(() => {}).then(() => this.#loop());
        };
        this.#ready.resolve();
        this.#o.onReady?.();
        return;
      } catch (err) {
        if (this.#stopped()) return;
        const code = (err as { code?: number }).code;
        if (code !== undefined && FATAL_CODES.has(code)) return this.#failed(err as Error);
        await src.stop().catch(() => {});
        const base = this.#o.retryBaseMs ?? 1000;
        const wait = backoffStep(this.#attempts, base, this.#o.retryMaxMs ?? 60_000);
        this.#o.warn(
          `discord: start failed (attempt ${this.#attempts}): ${
            errorText(err)
          }; retrying in ${wait} ms`,
        );
        this.#state = "retrying";
        await new Promise<void>((r) => {
          this.#wake = r;
          this.#timer = setTimeout(r, wait);
        });
      }
    }
  }

  // A method, not a comparison: stop() changes the state while an attempt is awaited.
  #stopped(): boolean {
    return this.#state === "stopped";
  }

  #failed(err: Error): void {
    if (this.#state === "failed" || this.#state === "stopped") return;
    this.#state = "failed";
    this.#ready.reject(err);
    this.#o.onFatal(err);
  }

  /** Stop trying and stop the current source. */
  async stop(): Promise<void> {
    if (this.#state !== "failed") this.#state = "stopped";
    this.#ready.reject(new Error("stopped before it was ready"));
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#current?.stop();
  }

  /** {@link DataSource.getServerData}: the current source's, or none yet. */
  getServerData(): ServerMap | Promise<ServerMap> {
    return this.#current?.getServerData() ?? {};
  }

  /** {@link DataSource.getUserData}. */
  getUserData(serverId: string): UserMap | Promise<UserMap> {
    if (!this.#current) throw new Error("not connected to Discord yet");
    return this.#current.getUserData(serverId);
  }

  /** {@link DataSource.validateDiscordUser}: nobody while not connected. */
  validateDiscordUser(token: string, user: DiscordUser, serverId: string): Promise<boolean> {
    return Promise.resolve(this.#current?.validateDiscordUser?.(token, user, serverId) ?? false);
  }

  /** {@link DataSource.getClientId}. */
  getClientId(serverId: string): string | null | undefined | Promise<string | null | undefined> {
    return this.#current?.getClientId?.(serverId);
  }

  /** {@link DataSource.watch}. */
  watch(serverId: string, active: boolean): void {
    this.#current?.watch?.(serverId, active);
  }
}
