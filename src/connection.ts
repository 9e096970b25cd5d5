/**
 * One client's WebSocket: inbound limits (frame size, rate, join deadline),
 * decoding, in-order handling of its frames, and outbound delivery that
 * drops a client which stopped reading instead of buffering without bound.
 *
 * @module
 */
import type { Subscriber } from "./hub.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { type ConnectRequest, errorFrame, ERRORS, parseClientFrame } from "./protocol.ts";

/** Per-connection limits. */
export interface ConnectionLimits {
  /** Largest accepted inbound frame, in bytes; larger closes with 1009. */
  maxFrameBytes: number;
  /** Sustained inbound frames per second. */
  ratePerSecond: number;
  /** Frames allowed in a burst above the rate. */
  rateBurst: number;
  /** Frames refused for rate before the connection is closed with 1008. */
  rateStrikes: number;
  /** Milliseconds a connection may stay open without joining; 0 disables. */
  joinTimeoutMs: number;
  /** Unsent bytes above which a client counts as behind; behind for `slowGraceMs` means dropped. */
  highWaterBytes: number;
  /** How long a client may stay above `highWaterBytes` (bursts are fine, stalls are not). */
  slowGraceMs: number;
  /** Unsent bytes at which a client is dropped at once, whatever the grace: the memory bound. */
  maxBufferedBytes: number;
}

/** What a connection asks of the rest of the server. */
export interface ConnectionHandler {
  /** Runs first, before any client frame is handled (sends the server list). */
  open(conn: Connection): Promise<void>;
  /** A parsed `connect` request. Requests of one connection run one at a time, in order. */
  connect(conn: Connection, request: ConnectRequest): Promise<void>;
  /** The socket closed. */
  closed(conn: Connection): void;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 size of a string, counted without encoding a copy of a possibly huge frame. */
function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** A client WebSocket, as seen by the hub and the handler. */
export class Connection implements Subscriber {
  /** Connection id used in logs, e.g. `c12`. */
  readonly id: string;
  /** Remote IP address. */
  readonly ip: string;
  #ws: WebSocket;
  #limits: ConnectionLimits;
  #log: Logger;
  #metrics: Metrics;
  #handler: ConnectionHandler;
  #queue: Promise<void> = Promise.resolve();
  #tokens: number;
  #refilled = performance.now();
  #strikes = 0;
  #joinTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #behindSince = 0;
  #doomed = false;

  /** Wire a freshly upgraded socket. */
  constructor(
    id: string,
    ip: string,
    ws: WebSocket,
    limits: ConnectionLimits,
    handler: ConnectionHandler,
    log: Logger,
    metrics: Metrics,
  ) {
    this.id = id;
    this.ip = ip;
    this.#ws = ws;
    this.#limits = limits;
    this.#handler = handler;
    this.#log = log;
    this.#metrics = metrics;
    this.#tokens = limits.rateBurst;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (limits.joinTimeoutMs > 0) {
        this.#joinTimer = setTimeout(() => {
          this.#log.warn(`closing: not joined within ${limits.joinTimeoutMs} ms`, this.id);
          this.#metrics.closedForAbuse++;
          this.drop(1008, "Join timeout");
        }, limits.joinTimeoutMs);
      }
      this.#enqueue(() => handler.open(this));
    };
    ws.onmessage = (e) => this.#onMessage(e.data);
    ws.onclose = (e) => this.#onClose(e.code);
    ws.onerror = () => {}; // the close event that follows says what happened
  }

  /** Whether the socket is open for sending. */
  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** Send a frame to this client only (answers, errors). */
  send(frame: string): void {
    this.deliver(frame);
  }

  /** Send an error frame. */
  sendError(message: string): void {
    this.#metrics.errorFrames++;
    this.#log.debug(`error frame: ${message}`, this.id);
    this.send(errorFrame(message));
  }

  /** The handler calls this once the connection has joined a server. */
  joined(): void {
    clearTimeout(this.#joinTimer);
    this.#joinTimer = undefined;
  }

  /**
   * Hub delivery: never awaits. A client whose unsent backlog stays above the
   * high-water mark for the grace period, or reaches the hard cap, is dropped
   * with 1013 instead of growing the server's memory.
   */
  deliver(frame: string): boolean {
    const ws = this.#ws;
    if (ws.readyState !== WebSocket.OPEN) return false;
    const buffered = ws.bufferedAmount;
    if (buffered > this.#limits.highWaterBytes) {
      const now = performance.now();
      if (this.#behindSince === 0) this.#behindSince = now;
      const stalled = now - this.#behindSince >= this.#limits.slowGraceMs;
      if (stalled || buffered + frame.length > this.#limits.maxBufferedBytes) {
        this.#metrics.droppedSlowClients++;
        this.#log.warn(
          `dropping slow client: ${buffered} bytes unsent ${
            stalled ? `for ${Math.round(now - this.#behindSince)} ms` : "(hard limit)"
          }`,
          this.id,
        );
        this.drop(1013, "Client too slow");
        return false;
      }
    } else if (this.#behindSince !== 0) {
      this.#behindSince = 0;
    }
    try {
      ws.send(frame);
    } catch {
      return false;
    }
    this.#metrics.framesOut++;
    return true;
  }

  /**
   * Close and forget at once: a peer that stopped reading may never answer
   * the close handshake, and must not hold its place in rooms and limits
   * while Deno waits for it.
   */
  drop(code: number, reason: string): void {
    this.close(code, reason);
    this.#release(`dropped (${code} ${reason})`);
  }

  /** Close with a code and reason; safe to call more than once. */
  close(code: number, reason: string): void {
    if (this.#ws.readyState === WebSocket.CLOSED || this.#ws.readyState === WebSocket.CLOSING) {
      return;
    }
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  /** Whether the socket has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err) => {
      this.#log.error(
        `handler failed: ${err instanceof Error ? err.message : String(err)}`,
        this.id,
      );
    });
  }

  #allow(): boolean {
    const now = performance.now();
    const { ratePerSecond, rateBurst } = this.#limits;
    this.#tokens = Math.min(
      rateBurst,
      this.#tokens + (now - this.#refilled) * ratePerSecond / 1000,
    );
    this.#refilled = now;
    if (this.#tokens >= rateBurst) this.#strikes = 0;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  #onMessage(data: unknown): void {
    if (this.#closed || this.#doomed) return;
    this.#metrics.framesIn++;
    const max = this.#limits.maxFrameBytes;
    const size = typeof data === "string"
      ? (data.length * 3 <= max ? 0 : utf8Length(data))
      : data instanceof ArrayBuffer
      ? data.byteLength
      : 0;
    if (size > max) {
      this.#log.warn(`closing: frame of ${size} bytes exceeds ${max}`, this.id);
      this.#metrics.closedForAbuse++;
      this.drop(1009, ERRORS.tooLarge);
      return;
    }
    if (!this.#allow()) {
      if (++this.#strikes > this.#limits.rateStrikes) {
        this.#doomed = true;
        this.#log.warn(`closing: ${this.#strikes} frames over the rate limit`, this.id);
        this.#metrics.closedForAbuse++;
        // After the answers already queued, so the client sees why.
        this.#enqueue(() => Promise.resolve(this.drop(1008, "Rate limit exceeded")));
      } else {
        this.#answerInOrder(ERRORS.rateLimited);
      }
      return;
    }
    let text: string;
    if (typeof data === "string") text = data;
    else {
      try {
        text = decoder.decode(data as ArrayBuffer);
      } catch {
        this.#answerInOrder(ERRORS.invalidBinary);
        return;
      }
    }
    const parsed = parseClientFrame(text);
    if (parsed.ok) this.#enqueue(() => this.#handler.connect(this, parsed.request));
    else this.#answerInOrder(parsed.error);
  }

  /** Errors are answered after the requests queued before them, never ahead. */
  #answerInOrder(message: string): void {
    this.#enqueue(() => {
      this.sendError(message);
      return Promise.resolve();
    });
  }

  #onClose(code: number): void {
    this.#release(`socket closed with code ${code}`);
  }

  #release(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#joinTimer);
    this.#log.debug(why, this.id);
    this.#handler.closed(this);
  }
}
