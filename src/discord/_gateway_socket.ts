/**
 * One gateway connection: the WebSocket (JSON frames in and out, events of a
 * dropped socket never delivered) and its heartbeat (first beat jittered, a
 * beat without an ACK since the last one means a zombied connection), and
 * the one-shot timers of a connection attempt.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import { gatewayWsUrl } from "./_rest.ts";
import { type Envelope, envelopeSchema } from "./_schemas.ts";

/** What a {@link GatewaySocket} reports. */
export interface SocketHandlers {
  /** A well-formed frame. */
  onFrame(env: Envelope): void;
  /** The socket closed (not after {@link GatewaySocket.detach}). */
  onClose(code: number, reason: string): void;
  /** Frames ignored, send failures, socket errors. */
  log(level: "debug" | "warn", message: string): void;
}

/** A WebSocket to the gateway whose events stop at {@link GatewaySocket.detach}. */
export class GatewaySocket {
  /** The URL connected to. */
  readonly url: string;
  /** Settles when the socket has closed (detached or not). */
  readonly closed: Promise<void>;
  #ws: WebSocket;
  #live = true;
  #opened = false;
  #log: SocketHandlers["log"];

  /** Connect to `base` (v10, JSON). Throws on an invalid URL. */
  constructor(base: string, h: SocketHandlers) {
    this.url = gatewayWsUrl(base);
    const ws = new WebSocket(this.url);
    this.#ws = ws;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    ws.onopen = () => this.#opened = true;
    ws.onmessage = (e) => {
      if (!this.#live) return;
      const env = decode(e.data);
      if (typeof env === "string") h.log("warn", env);
      else h.onFrame(env);
    };
    ws.onerror = (e) => {
      // At warn: the close that follows carries no reason (code 0), so this is the cause (DNS, refused, TLS).
      if (!this.#live) return;
      const detail = (e as ErrorEvent).message || errorText((e as ErrorEvent).error ?? "");
      // Node's WebSocket gives no reason at all (an empty message and error): name what failed.
      h.log(
        "warn",
        `socket error: ${
          detail ||
          `${this.#opened ? "the connection to" : "failed to connect to"} ${
            new URL(this.url).host
          } (the runtime gave no reason)`
        }`,
      );
    };
    ws.onclose = (e) => {
      resolve();
      if (this.#live) {
        this.#live = false;
        h.onClose(e.code, e.reason);
      }
    };
    this.#log = h.log;
  }

  /** Whether frames can be sent now. */
  get open(): boolean {
    return this.#live && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Send one frame; `false` when the socket is not open or the send failed. */
  send(payload: string): boolean {
    if (!this.open) return false;
    try {
      this.#ws.send(payload);
      return true;
    } catch (err) {
      this.#log("warn", `send failed: ${errorText(err)}`);
      return false;
    }
  }

  /** Deliver no more events, and close with `code`. */
  detach(code: number, reason: string): void {
    this.#live = false;
    const ws = this.#ws;
    if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) return;
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
  }
}

/** A frame, or why it was ignored. */
function decode(data: unknown): Envelope | string {
  if (typeof data !== "string") {
    return "ignored a binary gateway frame (compression is not supported)";
  }
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return "ignored a gateway frame that is not JSON";
  }
  const env = envelopeSchema.safeParse(json);
  return env.success ? env.data : "ignored a gateway frame without an opcode";
}

/**
 * Heartbeats every `intervalMs` (the first after a random part of it, so
 * many clients do not beat in step). A beat due while the last one has no
 * ACK calls `onZombie` instead.
 *
 * @example
 * ```ts
 * import { Heartbeat } from "./_gateway_socket.ts";
 * let beats = 0;
 * const hb = new Heartbeat(() => beats++, () => {}, () => true);
 * hb.start(10_000);
 * hb.beatNow();
 * hb.stop();
 * if (beats !== 1) throw new Error(`${beats} beats`);
 * ```
 */
export class Heartbeat {
  #beat: () => void;
  #onZombie: () => void;
  #alive: () => boolean;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #intervalMs = 0;
  #acked = true;

  /** `beat` sends one heartbeat frame; beats stop while `alive()` is false (the socket is closing). */
  constructor(beat: () => void, onZombie: () => void, alive: () => boolean) {
    this.#beat = beat;
    this.#onZombie = onZombie;
    this.#alive = alive;
  }

  /** Start beating (after HELLO). */
  start(intervalMs: number): void {
    this.stop();
    this.#intervalMs = intervalMs;
    this.#acked = true;
    this.#timer = setTimeout(() => this.#tick(), intervalMs * Math.random());
  }

  /** The gateway acknowledged a beat. */
  ack(): void {
    this.#acked = true;
  }

  /** Beat now, outside the rhythm (the gateway asked for one). */
  beatNow(): void {
    this.#beat();
  }

  /** Stop beating. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    this.#timer = undefined;
    if (!this.#alive()) return;
    if (!this.#acked) return this.#onZombie();
    this.#acked = false;
    this.#beat();
    this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
  }
}

/**
 * One-shot timers by name: setting a name replaces its timer.
 *
 * @example
 * ```ts
 * import { NamedTimers } from "./_gateway_socket.ts";
 * const timers = new NamedTimers<"a">();
 * let fired = 0;
 * timers.set("a", () => fired++, 0);
 * timers.clear();
 * await new Promise((r) => setTimeout(r, 5));
 * if (fired !== 0) throw new Error("a cleared timer fired");
 * ```
 */
export class NamedTimers<Name extends string> {
  #timers = new Map<Name, ReturnType<typeof setTimeout>>();

  /** Run `fn` after `ms`, replacing the timer of `name`. */
  set(name: Name, fn: () => void, ms: number): void {
    this.cancel(name);
    this.#timers.set(
      name,
      setTimeout(() => {
        this.#timers.delete(name);
        fn();
      }, ms),
    );
  }

  /** Cancel the timer of `name`. */
  cancel(name: Name): void {
    clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
  }

  /** Cancel every timer. */
  clear(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
