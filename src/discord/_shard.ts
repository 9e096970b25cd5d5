/**
 * One gateway session of a {@link DiscordGatewaySource} and the state of its
 * guilds: feeds every dispatch to the reducer and carries out what comes
 * back (broadcasts, member requests and their retries, readiness once the
 * promised guilds arrived, info replies through the host). After a takeover
 * RESUME it rebuilds the guilds it holds from a snapshot.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import type { Logger } from "../log.ts";
import type { EventSink } from "../source.ts";
import { type Output, reduce, reissueMemberRequests, type SourceState } from "./_reducer.ts";
import { Op } from "./_schemas.ts";

const TAG = "discord";

/** What a shard needs of a gateway session; `GatewayClient` fits. */
export interface GatewayLike {
  /** Open the first connection. */
  connect(): void;
  /** `key`: a frame still queued under the same key is replaced. */
  send(op: number, d: unknown, options?: { key?: string }): boolean;
  /** Stop for good. */
  close(): Promise<void>;
}

/** What a shard needs of its source. */
export interface ShardHost {
  /** Logger. */
  log: Logger;
  /** Where events go (once started). */
  sink(): EventSink | undefined;
  /** Whether the source still runs (not stopped, not failed). */
  live(): boolean;
  /** Whether the source is still starting (waiting for every shard). */
  starting(): boolean;
  /** A member request not complete after this long is sent again, ms. */
  memberRequestTimeoutMs: number;
  /** How long READY's guilds may take to arrive, ms. */
  guildTimeoutMs: number;
  /** This shard is ready (its guilds arrived, or the wait ended). */
  shardReady(shard: Shard): void;
  /** READY listed these guilds (warn about configured ones missing). */
  listed(shard: Shard, available: Set<string>): void;
  /** A member left a guild. */
  memberLeft(userId: string, guildId: string): void;
  /** Someone sent the info command. */
  infoCommand(guildId: string, channelId: string): void;
  /** Rebuild a guild held from a snapshot (after a takeover RESUME). */
  rebuild(shard: Shard, guildId: string): Promise<Output[]>;
}

/** One gateway session and its guilds. */
export class Shard {
  /** Shard id. */
  readonly id: number;
  /** The guilds of this shard and their member syncs. */
  readonly state: SourceState;
  /** The session. */
  gateway!: GatewayLike;
  /** Whether READY (or a takeover RESUME) and the promised guilds are in. */
  ready = false;
  /** Whether the guilds came from a snapshot and await a rebuild after RESUMED. */
  fromSnapshot = false;
  /** Guilds READY promised that have not arrived yet; `null` once the shard is ready. */
  #pending: Set<string> | null = null;
  #guildTimer: ReturnType<typeof setTimeout> | undefined;
  #memberTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #h: ShardHost;

  /** A shard whose gateway is set by the caller. */
  constructor(id: number, state: SourceState, host: ShardHost) {
    this.id = id;
    this.state = state;
    this.#h = host;
  }

  /** A dispatch from the gateway. */
  dispatch(t: string, d: unknown): void {
    if (!this.#h.live()) return;
    this.carryOut(reduce(this.state, t, d));
  }

  /** A session began (READY) or resumed. */
  session(kind: "ready" | "resumed"): void {
    if (!this.#h.live()) return;
    if (kind === "ready") {
      this.fromSnapshot = false; // GUILD_CREATEs follow and replace the snapshot
      return;
    }
    if (this.fromSnapshot) {
      // A takeover RESUME: the missed dispatches were replayed on the snapshot.
      this.fromSnapshot = false;
      this.#markReady();
      for (const id of [...this.state.guilds.keys()]) {
        void this.#h.rebuild(this, id).then((out) => {
          if (this.#h.live()) this.carryOut(out);
        });
      }
      return;
    }
    // A request sent on the dropped socket may never have reached Discord.
    this.carryOut(reissueMemberRequests(this.state));
  }

  /** Carry out the reducer's outputs; one that fails is logged, the rest go on. */
  carryOut(outputs: Output[]): void {
    for (const o of outputs) {
      try {
        this.#one(o);
      } catch (err) {
        this.#h.log.error(`handling ${o.kind} failed: ${errorText(err)}`, TAG);
      }
    }
  }

  /** Stop every timer. */
  clearTimers(): void {
    clearTimeout(this.#guildTimer);
    this.#guildTimer = undefined;
    for (const t of this.#memberTimers.values()) clearTimeout(t);
    this.#memberTimers.clear();
  }

  #one(o: Output): void {
    switch (o.kind) {
      case "presence":
        this.#h.sink()?.emit({ type: "presence", event: o.event });
        return;
      case "message":
        this.#h.sink()?.emit({ type: "message", event: o.event });
        return;
      case "log":
        this.#h.log[o.level](o.message, TAG);
        return;
      case "ready":
        return this.#onReady(o.guildIds);
      case "guild-arrived":
        if (this.#pending?.delete(o.guildId) && this.#pending.size === 0) this.#markReady();
        return;
      case "guild-gone":
        this.#clearMemberTimer(o.guildId);
        this.#h.sink()?.emit({ type: "server-gone", event: { server: o.guildId } });
        return;
      case "member-left":
        this.#h.memberLeft(o.userId, o.guildId);
        return;
      case "request-members":
        return this.#requestMembers(o.guildId, o.nonce);
      case "retry-members":
        return this.#retryLater(o.guildId, o.afterMs);
      case "members-complete":
        this.#clearMemberTimer(o.guildId);
        return;
      case "info-command":
        return this.#h.infoCommand(o.guildId, o.channelId);
    }
  }

  #markReady(): void {
    clearTimeout(this.#guildTimer);
    this.#guildTimer = undefined;
    this.#pending = null;
    this.ready = true;
    this.#h.shardReady(this);
  }

  #onReady(available: string[]): void {
    if (this.ready || !this.#h.starting()) return;
    const availableSet = new Set(available);
    const pending = new Set<string>();
    for (const id of available) if (this.state.config.serves(id)) pending.add(id);
    this.#h.listed(this, availableSet);
    for (const id of this.state.guilds.keys()) pending.delete(id);
    if (pending.size === 0) return this.#markReady();
    this.#pending = pending;
    this.#guildTimer = setTimeout(() => {
      this.#guildTimer = undefined;
      this.#h.log.warn(
        `guild(s) ${[...(this.#pending ?? [])].join(", ")} did not arrive within ` +
          `${this.#h.guildTimeoutMs} ms; continuing without them for now`,
        TAG,
      );
      this.#markReady();
    }, this.#h.guildTimeoutMs);
  }

  #clearMemberTimer(guildId: string): void {
    clearTimeout(this.#memberTimers.get(guildId));
    this.#memberTimers.delete(guildId);
  }

  #retryLater(guildId: string, afterMs: number): void {
    this.#clearMemberTimer(guildId);
    this.#memberTimers.set(
      guildId,
      setTimeout(() => {
        this.#memberTimers.delete(guildId);
        this.carryOut(reissueMemberRequests(this.state, [guildId]));
      }, afterMs),
    );
  }

  #requestMembers(guildId: string, nonce: string): void {
    // One queued request per guild: a re-issue replaces one still waiting to be sent.
    const sent = this.gateway.send(Op.REQUEST_GUILD_MEMBERS, {
      guild_id: guildId,
      query: "",
      limit: 0,
      presences: true,
      nonce,
    }, { key: "members:" + guildId });
    if (!sent) {
      this.#h.log.warn(
        `could not send the member request of ${guildId} (not connected, or the send queue is full); asking again later`,
        TAG,
      );
    }
    // Until the chunks of this nonce are complete, ask again now and then.
    this.#clearMemberTimer(guildId);
    const timer = setTimeout(() => {
      this.#memberTimers.delete(guildId);
      if (this.state.syncs.get(guildId)?.nonce !== nonce) return;
      this.#h.log.warn(
        `member list of ${guildId} incomplete after ${this.#h.memberRequestTimeoutMs} ms; asking again`,
        TAG,
      );
      this.carryOut(reissueMemberRequests(this.state, [guildId]));
    }, this.#h.memberRequestTimeoutMs);
    this.#memberTimers.set(guildId, timer);
  }
}
