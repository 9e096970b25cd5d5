/**
 * One viewer's WebSocket: inbound limits where the bytes arrive (frame size,
 * per-connection rate, the per-IP budget it shares, join and open
 * deadlines, checked by the server's periodic sweep: no timer per
 * connection), decoding, in-order handling of a small bounded queue of its
 * requests, and outbound delivery that never lets one socket's unsent bytes
 * pass the hard cap (the rule itself is `_slow_client.ts`) nor its client
 * address's memory charge pass its budget (`_charge.ts`).
 *
 * @module
 */
import { type ConnectRequest, decodeClientFrame } from "./_client_frames.ts";
import { errorText } from "./_errors.ts";
import { errorFrame } from "./_frames.ts";
import { sizeForLimit, TokenBucket, utf8Length } from "./_limits.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import { ERRORS } from "./protocol.ts";
import type { Charge } from "./_charge.ts";
import { SlowClientRule } from "./_slow_client.ts";
import type { WsEvents, WsPeer } from "./transport/types.ts";
import type { ConnectionLimits, IpBudget } from "./_connection_limits.ts";

export type { ConnectionHandler, ConnectionOwner } from "./_connection_roles.ts";
import type { ConnectionHandler, ConnectionOwner } from "./_connection_roles.ts";

type Task =
  | { kind: "open" }
  | { kind: "connect"; request: ConnectRequest }
  | { kind: "error"; message: string }
  | { kind: "close"; code: number; reason: string };

// Enough for a burst of answers; a client cannot grow it further (newest connect wins).
const MAX_TASKS = 8;

/** A client WebSocket, as seen by the hub and the handler. */
export class Connection implements WsEvents {
  /** Connection id used in logs, e.g. `c12`. */
  readonly id: string;
  /** Remote IP address. */
  readonly ip: string;
  /** The room it was in when it left (for the log line). */
  lastRoom: string | undefined;
  #peer: WsPeer | undefined;
  #limits: ConnectionLimits;
  // Made when a check needs state (behind, or a join in flight), let go when it is new again.
  #slow: SlowClientRule | undefined;
  #log: Logger;
  #metrics: Metrics;
  #handler: ConnectionHandler;
  #owner: ConnectionOwner;
  #budget: IpBudget;
  #charge: Charge;
  // Made on the first frame, let go when full again: a connection that does not send holds none.
  #bucket: TokenBucket | undefined;
  #strikes = 0;
  #tasks: Task[] | undefined;
  #running = false;
  // When the open (then the join) deadline passes, on the `performance.now()` clock; 0: none.
  #deadline: number;
  #state: "upgrading" | "open" | "doomed" | "closed" = "upgrading";
  #ignoring = false;
  #sentBytes = 0;
  #joinEnd = 0;

  /** A connection for a socket being upgraded; it counts from now on. */
  constructor(
    id: string,
    ip: string,
    limits: ConnectionLimits,
    handler: ConnectionHandler,
    owner: ConnectionOwner,
    budget: IpBudget,
    charge: Charge,
    log: Logger,
    metrics: Metrics,
  ) {
    this.id = id;
    this.ip = ip;
    this.#limits = limits;
    this.#handler = handler;
    this.#owner = owner;
    this.#budget = budget;
    this.#charge = charge;
    this.#log = log;
    this.#metrics = metrics;
    // A peer that resets during the upgrade never opens and never closes: the sweep forgets it.
    this.#deadline = performance.now() + limits.openTimeoutMs;
  }

  /** Whether the socket is open for sending. */
  get isOpen(): boolean {
    return this.#state === "open" && this.#peer !== undefined && this.#peer.isOpen;
  }

  /** Whether the connection is finished (closed, never opened, or dropped). */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** The socket, once open. */
  get peer(): WsPeer | undefined {
    return this.#peer;
  }

  /** Unsent bytes. */
  get bufferedAmount(): number {
    return this.#peer?.bufferedAmount ?? 0;
  }

  /** What this connection is charged to its client address. */
  get charge(): Charge {
    return this.#charge;
  }

  // --- transport events ---

  /** Transport event: the socket opened. */
  open(peer: WsPeer): void {
    if (this.#state !== "upgrading") return;
    this.#peer = peer;
    this.#state = "open";
    const joinMs = this.#limits.joinTimeoutMs;
    this.#deadline = joinMs > 0 ? performance.now() + joinMs : 0;
    this.#push({ kind: "open" });
  }

  /** Transport event: one message arrived. */
  message(data: string | ArrayBuffer | Uint8Array): void {
    if (this.#state !== "open" || this.#ignoring) return;
    this.#metrics.framesIn++;
    const max = this.#limits.maxFrameBytes;
    const size = typeof data === "string" ? sizeForLimit(data, max) : data.byteLength;
    if (size > max) {
      this.#log.warn(`closing: frame of ${size} bytes exceeds ${max}`, this.id);
      this.#metrics.closedForAbuse++;
      this.drop(1009, ERRORS.tooLarge);
      return;
    }
    const now = performance.now(); // one clock reading for every bucket this frame touches
    const bucket = this.#bucket ??= new TokenBucket(
      this.#limits.ratePerSecond,
      this.#limits.rateBurst,
      now,
    );
    // Asked before the take: after it a bucket is never full.
    const calm = bucket.full(now);
    const own = bucket.take(1, now);
    if (!own || !this.#budget.take(size, now)) {
      if (++this.#strikes > this.#limits.rateStrikes) {
        this.#log.warn(
          `closing: ${this.#strikes} frames over the ${own ? "per-IP budget" : "rate limit"}`,
          this.id,
        );
        this.#metrics.closedForAbuse++;
        // After the answers already queued, so the client sees why.
        this.#tasks = this.#tasks?.filter((t) => t.kind !== "connect");
        this.#push({ kind: "close", code: 1008, reason: "Rate limit exceeded" });
        this.#ignoring = true;
      } else {
        this.#push({ kind: "error", message: ERRORS.rateLimited });
      }
      return;
    }
    // A client calm long enough for its bucket to refill, and within its address's budget, is
    // forgiven its old refusals; one whose address floods is not, however slowly it sends.
    if (calm) this.#strikes = 0;
    const parsed = decodeClientFrame(data);
    if (parsed.ok) this.#push({ kind: "connect", request: parsed.request });
    else this.#push({ kind: "error", message: parsed.error });
  }

  /** Transport event: the socket closed. */
  close(code: number): void {
    // Both lines are built only when written: every viewer closes once.
    if (!this.#log.enabled("debug")) return this.#finish("");
    this.#log.debug(`socket closed with code ${code}`, this.id);
    this.#finish(`closed (${code})`);
  }

  // --- used by the handler and the hub ---

  /** Send a frame to this client only (answers, errors). */
  send(frame: string): boolean {
    return this.deliver(frame, utf8Length(frame));
  }

  /** Send an error frame. */
  sendError(message: string): void {
    this.#metrics.errorFrames++;
    this.#log.debug(`error frame: ${message}`, this.id);
    this.send(errorFrame(message));
  }

  /**
   * Send the (shared) `server-join` frame of `bytes` UTF-8 bytes; remember
   * where it ends in the outbound stream. Its own bytes are not "behind":
   * until it is out (unsent bytes back under `highWaterBytes`) or overdue
   * (`slowGraceMs` plus its size at `joinMinBytesPerSecond`), both limits are
   * raised by its size, so a big join read at a sane speed drops nobody.
   */
  sendJoin(frame: string, bytes: number): boolean {
    const peer = this.#peer;
    if (this.#state !== "open" || !peer || !peer.isOpen) return false;
    const buffered = peer.bufferedAmount;
    if (!this.#keepsUp(buffered, 0)) return false;
    // The join counts in full against the address's budget.
    if (!this.#charge.affords(buffered + bytes)) return this.#tooSlow(buffered, "(address budget)");
    const slow = this.#slow ??= new SlowClientRule(this.#limits);
    slow.joinSent(bytes);
    const unsent = this.#write(peer, frame, bytes, buffered);
    this.#joinEnd = this.#sentBytes;
    // Most joins leave at once: then none is in flight, and no sweep need watch it go.
    if (slow.check(unsent, 0) === null && slow.idle) this.#slow = undefined;
    return true;
  }

  /** Whether a `server-join` still counts as in flight (not out, not overdue): see {@link Connection.sendJoin}. */
  get joinInFlight(): boolean {
    return this.#slow?.joinInFlight ?? false;
  }

  /**
   * Spend one join from the connection's and its IP's join budgets, before a
   * `server-join` is built: each may be megabytes out, so churn is refused
   * before a byte of it is sent. `false` (and counted) when either is spent.
   */
  takeJoin(): boolean {
    if (this.#budget.join()) return true;
    this.#metrics.joinsRefusedBudget++;
    this.#log.warn("join refused: join budget spent", this.id);
    return false;
  }

  /** Whether an earlier `server-join` has not yet left the process. */
  get joinUnsent(): boolean {
    return this.#sentBytes - this.bufferedAmount < this.#joinEnd;
  }

  /** Spend one login check from the client address's budget; `false` when it is spent. */
  mayCheckLogin(): boolean {
    return this.#budget.login();
  }

  /** The handler calls this once the connection has joined a server, or waits in the join queue: no join deadline any more. */
  joined(): void {
    this.#deadline = 0;
  }

  /**
   * Hub delivery: never awaits. A send that would take the unsent bytes past
   * `maxBufferedBytes`, or a client that stays above the high-water mark for
   * the grace period, drops the client with 1013 instead of growing memory.
   */
  deliver(frame: string, bytes: number): boolean {
    const peer = this.#peer;
    if (this.#state !== "open" || !peer || !peer.isOpen) return false;
    const buffered = peer.bufferedAmount;
    if (!this.#keepsUp(buffered, bytes)) return false;
    this.#write(peer, frame, bytes, buffered);
    return true;
  }

  #write(peer: WsPeer, frame: string, bytes: number, buffered: number): number {
    peer.send(frame);
    this.#sentBytes += bytes;
    this.#charge.sent(bytes);
    // The unsent bytes after the send (returned): one reading per delivery where the runtime
    // allows (see `WsPeer.countsWholeSend`).
    const unsent = peer.countsWholeSend ? buffered + bytes : peer.bufferedAmount;
    this.#charge.set(unsent);
    this.#metrics.framesOut++;
    return unsent;
  }

  /**
   * The periodic check (`now` on the `performance.now()` clock): the open and
   * join deadlines, the state that is new again (let go), then the
   * slow-reader check without a send, for sockets nothing is sent to (a
   * quiet guild: a join left unread) and frames that bypass
   * {@link Connection.deliver} (native fan-out).
   */
  sweep(now: number = performance.now()): void {
    if (this.#deadline > 0 && now >= this.#deadline) return this.#expire();
    // A bucket full again is the same as a new one: a calm connection holds none.
    if (this.#bucket?.full(now)) this.#bucket = undefined;
    this.#budget.settle(now);
    if (this.#slow?.idle) this.#slow = undefined;
    const peer = this.#peer;
    if (this.#state !== "open" || !peer || !peer.isOpen) return;
    const buffered = peer.bufferedAmount;
    this.#charge.set(buffered);
    // As if one more byte were sent: a socket already at the cap is dropped.
    this.#keepsUp(buffered, 1);
  }

  #expire(): void {
    this.#deadline = 0;
    const limits = this.#limits;
    if (this.#state === "upgrading") {
      this.#log.warn(`forgotten: socket did not open within ${limits.openTimeoutMs} ms`, this.id);
      this.#finish("never opened");
    } else if (this.#state === "open") {
      this.#log.warn(`closing: not joined within ${limits.joinTimeoutMs} ms`, this.id);
      this.#metrics.closedForAbuse++;
      this.drop(1008, "Join timeout");
    }
  }

  /**
   * The slow-client rule (see `_slow_client.ts`), then the address's budget
   * (see `_charge.ts`), shared by sends and sweeps; `false` when dropped.
   */
  #keepsUp(buffered: number, bytes: number): boolean {
    const slow = this.#slow ??
      (SlowClientRule.calm(this.#limits, buffered, bytes)
        ? undefined
        : this.#slow = new SlowClientRule(this.#limits));
    const why = (slow ? slow.check(buffered, bytes) : null) ??
      (this.#charge.affords(buffered + bytes) ? null : "(address budget)");
    return why === null || this.#tooSlow(buffered, why);
  }

  #tooSlow(buffered: number, why: string): false {
    this.#metrics.droppedSlowClients++;
    this.#log.warn(`dropping slow client: ${buffered} bytes unsent ${why}`, this.id);
    this.drop(1013, "Client too slow");
    return false;
  }

  /**
   * Stop talking to this client: leave the room at once, tear the socket
   * down where the runtime can (a close frame would wait behind the unsent
   * bytes, and on Bun a started close makes `terminate()` do nothing), else
   * close it. It stays charged to its address, as what it held at the drop,
   * until the runtime proves the socket gone and the quarantine has passed.
   */
  drop(code: number, reason: string): void {
    if (this.#state === "closed" || this.#state === "doomed") return;
    const peer = this.#peer;
    this.#state = "doomed";
    this.#tasks = undefined;
    this.#deadline = 0;
    this.#owner.leave(this);
    if (!peer) return this.#finish("dropped before open");
    const unsent = peer.bufferedAmount;
    this.#charge.drop(unsent, () => peer.gone?.());
    if (unsent > 0 && peer.terminate()) {
      return this.#finish(`terminated (${code} ${reason}, ${unsent} bytes unsent)`);
    }
    peer.close(code, reason);
    if (peer.terminate()) this.#finish(`terminated (${code} ${reason})`);
    else this.#log.debug(`dropped (${code} ${reason}); charged until the socket is gone`, this.id);
  }

  /** Close with a code and reason (shutdown); the close event finishes it. */
  closeWith(code: number, reason: string): void {
    if (this.#peer) this.#peer.close(code, reason);
    else this.#finish("closed before open");
  }

  #finish(why: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#tasks = undefined;
    this.#deadline = 0;
    if (why) this.#log.debug(why, this.id);
    this.#owner.leave(this);
    this.#owner.release(this);
  }

  #push(task: Task): void {
    if (task.kind === "connect") {
      // The newest connect wins: older ones still waiting are dropped.
      if (this.#tasks) this.#tasks = this.#tasks.filter((t) => t.kind !== "connect");
    } else if (task.kind === "error" && (this.#tasks?.length ?? 0) >= MAX_TASKS) {
      return; // the client is told enough already
    }
    (this.#tasks ??= []).push(task);
    if (!this.#running) this.#pump();
  }

  /**
   * Run the queued tasks in order; an asynchronous one resumes the loop when
   * it settles (a callback on its promise, not an async frame per task).
   */
  #pump(): void {
    this.#running = true;
    let task: Task | undefined;
    while (this.#state !== "closed" && (task = this.#tasks?.shift()) !== undefined) {
      let pending: Promise<void> | undefined;
      try {
        pending = this.#run(task);
      } catch (err) {
        pending = Promise.reject(err); // logged like a rejection, then the next task
      }
      if (pending) {
        pending.then(() => this.#pump(), (err) => {
          this.#log.error(`handler failed: ${errorText(err)}`, this.id);
          this.#pump();
        });
        return;
      }
    }
    this.#tasks = undefined;
    this.#running = false;
  }

  #run(task: Task): Promise<void> | undefined {
    switch (task.kind) {
      case "open":
        return this.#handler.open(this);
      case "connect":
        if (this.joinUnsent) return this.#connectAfterJoin(task.request);
        return this.#state === "open" ? this.#handler.connect(this, task.request) : undefined;
      case "error":
        this.sendError(task.message);
        return;
      case "close":
        return this.#closeAfterFrames(task.code, task.reason);
    }
  }

  async #connectAfterJoin(request: ConnectRequest): Promise<void> {
    // One server-join at a time: a second waits until the first has left the process.
    while (this.joinUnsent && this.#state === "open") {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.#state === "open") await this.#handler.connect(this, request);
  }

  async #closeAfterFrames(code: number, reason: string): Promise<void> {
    // Let frames already on the wire be read first: Deno ends a socket that receives
    // data after its close frame abnormally (code 0), and the client would not see why.
    await new Promise((r) => setTimeout(r, 10));
    this.drop(code, reason);
  }
}
