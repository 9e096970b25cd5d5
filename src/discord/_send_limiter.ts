/**
 * The gateway's outbound frame budget ({@link SendLimiter}): Discord closes a
 * connection that sends more than 120 frames a minute.
 *
 * @module
 */

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
