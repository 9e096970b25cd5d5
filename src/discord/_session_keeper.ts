/**
 * One shard's gateway session (id, sequence, resume URL) and its link to an
 * optional {@link GatewaySessionStore}: loaded once at start (bounded by a
 * deadline, validated), saved after READY/RESUMED, at most once per interval
 * while the sequence moves (an interval of 0: after every dispatch, with
 * at most one save waiting), and when the session ends. Saves run one after another, so an older one never
 * lands last. Store failures are logged and otherwise ignored.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import { storedSessionSchema } from "./_schemas.ts";
import type { GatewaySession, GatewaySessionStore } from "./_gateway_types.ts";

/** Options of {@link SessionKeeper}. */
export interface SessionKeeperOptions {
  /** The store, if the session is kept across processes. */
  store?: GatewaySessionStore;
  /** The shard whose session this is. */
  shard: number;
  /** How many shards this process runs (a session of another count is not resumed). Default 1. */
  shards?: number;
  /** Least time between two saves while the sequence moves, ms. */
  intervalMs: number;
  /** Deadline of `load`, ms. */
  loadTimeoutMs: number;
  /** Where problems are reported. */
  warn: (message: string) => void;
}

/** One shard's session and its link to the session store. */
export class SessionKeeper {
  /** READY's `session_id`; `null` without a session. */
  id: string | null = null;
  /** The last sequence number received. */
  seq: number | null = null;
  /** READY's `resume_gateway_url`. */
  resumeUrl: string | null = null;
  #o: SessionKeeperOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastSave = -Infinity;
  #savedSeq: number | null = null;
  #saving: Promise<void> = Promise.resolve();
  #queued = false;

  /** No session yet; nothing is loaded until {@link SessionKeeper.restore}. */
  constructor(options: SessionKeeperOptions) {
    this.#o = options;
  }

  /** Whether there is a store (the session must then stay resumable at close). */
  get stored(): boolean {
    return this.#o.store !== undefined;
  }

  /** The session as a store keeps it, when there is one to resume. */
  current(): GatewaySession | undefined {
    return this.id !== null && this.resumeUrl !== null
      ? {
        sessionId: this.id,
        seq: this.seq ?? 0,
        resumeUrl: this.resumeUrl,
        shards: this.#o.shards ?? 1,
      }
      : undefined;
  }

  /** Take the stored session, if there is a valid one; whether there was. */
  async restore(): Promise<boolean> {
    const s = await this.#load();
    if (!s) return false;
    this.id = s.sessionId;
    this.seq = s.seq;
    this.resumeUrl = s.resumeUrl;
    return true;
  }

  /** A new session (READY). */
  begin(id: string, resumeUrl: string | null): void {
    this.id = id;
    this.resumeUrl = resumeUrl;
  }

  /** The session is over: forget it (and tell the store). */
  forget(): void {
    const had = this.id !== null;
    this.id = this.resumeUrl = this.seq = null;
    if (had) this.save(true);
  }

  /** Settles when every save started so far has. */
  get saving(): Promise<void> {
    return this.#saving;
  }

  /** The stored session, if there is a valid one (a failure or a malformed one is logged: `undefined`). */
  async #load(): Promise<GatewaySession | undefined> {
    const { store, shard, loadTimeoutMs } = this.#o;
    if (!store) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const loaded = await Promise.race([
        store.load(shard),
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () => reject(new Error(`no answer within ${loadTimeoutMs} ms`)),
            loadTimeoutMs,
          )
        ),
      ]);
      if (loaded === undefined) return undefined;
      const s = storedSessionSchema.safeParse(loaded);
      if (!s.success) {
        this.#o.warn("ignored a malformed stored session");
        return undefined;
      }
      const shards = this.#o.shards ?? 1;
      if (s.data.shards !== undefined && s.data.shards !== shards) {
        // Guilds map to shards by count: resuming would give this shard another's guilds.
        this.#o.warn(
          `the stored session ran ${s.data.shards} shard(s), this process runs ${shards}; identifying`,
        );
        return undefined;
      }
      this.#savedSeq = s.data.seq;
      return s.data;
    } catch (err) {
      this.#o.warn(`could not load the stored session (${errorText(err)}); identifying`);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Save now when `now`, else at most once per interval (and only when the sequence moved). */
  save(now: boolean): void {
    const store = this.#o.store;
    if (!store) return;
    const session = this.current();
    if (!now) {
      if (this.#timer !== undefined || (session?.seq ?? null) === this.#savedSeq) return;
      const wait = this.#lastSave + this.#o.intervalMs - Date.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.save(true);
        }, wait);
        return;
      }
    }
    this.cancel();
    this.#lastSave = Date.now();
    this.#savedSeq = session?.seq ?? null;
    // One save waits at most; it writes the newest session when its turn comes,
    // so saving after every dispatch (interval 0) never builds a backlog.
    if (this.#queued) return;
    this.#queued = true;
    const shard = this.#o.shard;
    this.#saving = this.#saving.then(() => {
      this.#queued = false;
      const newest = this.current();
      this.#savedSeq = newest?.seq ?? null;
      return store.save(shard, newest);
    }).catch((err) => this.#o.warn(`could not save the session (${errorText(err)})`));
  }

  /** Drop a save waiting for its interval. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
