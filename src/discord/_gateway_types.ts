/**
 * The gateway's vocabulary: intents, fatal close codes, the error a source
 * will not retry, timing knobs (and their defaults), the client's options
 * and the session a store keeps.
 *
 * @module
 */
import process from "node:process";
import type { Logger } from "../log.ts";
import type { IdentifyBudget } from "./_identify_budget.ts";
import type { FetchLike } from "./_rest.ts";

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
export const NEW_SESSION_CLOSE_CODES = new Set([4007, 4009]);

/** Our own close code when we drop a connection to resume it (not 1000/1001: those end the session). */
export const RECONNECT_CLOSE_CODE = 4900;

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
  /** Least time between two session-store saves, ms. Default 1000; 0 saves after every dispatch (one save waiting at most). */
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
  /**
   * How many shards the session's process ran. A process running a
   * different count IDENTIFYs instead: that shard's guilds are not the same.
   * Absent in records from before it was kept: those are resumed.
   */
  shards?: number;
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
 * import type { GatewaySession, GatewaySessionStore } from "./_gateway_types.ts";
 * import { SessionKeeper } from "./_session_keeper.ts";
 *
 * const saved = new Map<number, GatewaySession>();
 * const store: GatewaySessionStore = {
 *   load: (shard) => Promise.resolve(saved.get(shard)),
 *   save: (shard, s) => Promise.resolve(void (s ? saved.set(shard, s) : saved.delete(shard))),
 * };
 * saved.set(0, { sessionId: "abc", seq: 7, resumeUrl: "wss://resume.example" });
 * saved.set(1, { sessionId: "", seq: -1, resumeUrl: "nowhere" });
 * // How a gateway client reads it at start: a valid session is resumed, a malformed one ignored.
 * const warnings: string[] = [];
 * const keeper = (shard: number) =>
 *   new SessionKeeper({ store, shard, intervalMs: 1000, loadTimeoutMs: 1000, warn: (m) => warnings.push(m) });
 * const good = keeper(0);
 * if (!(await good.restore()) || good.seq !== 7) throw new Error("not restored");
 * if ((await keeper(1).restore()) || warnings.length !== 1) throw new Error("malformed one used");
 * ```
 */
export interface GatewaySessionStore {
  /** The saved session of `shard`, if any. */
  load(shard: number): Promise<GatewaySession | undefined>;
  /** Save (or, with `undefined`, forget) the session of `shard`. */
  save(shard: number, session: GatewaySession | undefined): Promise<void>;
}

/** The message of an unknown thrown value (the package's one error-to-text rule). */

/** {@link GatewayTiming} with every default filled in. */
export type ResolvedTiming =
  & Required<Omit<GatewayTiming, "invalidSessionDelayMs">>
  & { invalidSessionDelayMs?: number };

/**
 * Fill in the defaults of {@link GatewayTiming}.
 *
 * @example
 * ```ts
 * import { resolveTiming } from "./_gateway_types.ts";
 * const t = resolveTiming({ identifyIntervalMs: 300 });
 * if (t.identifyIntervalMs !== 300 || t.sendLimit !== 110) throw new Error("defaults");
 * ```
 */
export function resolveTiming(t: GatewayTiming = {}): ResolvedTiming {
  return {
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

/**
 * The IDENTIFY frame (op 2) as sent.
 *
 * @example
 * ```ts
 * import { identifyFrame } from "./_gateway_types.ts";
 * const f = JSON.parse(identifyFrame("t", 513, [1, 2]));
 * if (f.op !== 2 || f.d.intents !== 513 || f.d.shard[0] !== 1) throw new Error("frame");
 * ```
 */
export function identifyFrame(token: string, intents: number, shard?: [number, number]): string {
  const d: Record<string, unknown> = {
    token,
    intents,
    large_threshold: 250,
    properties: { os: process.platform, browser: "dback", device: "dback" },
  };
  if (shard) d.shard = [...shard];
  return JSON.stringify({ op: 2, d });
}

/**
 * `shard` when it is a valid `[id, count]` (or absent); a `TypeError` otherwise.
 *
 * @example
 * ```ts
 * import { checkShard } from "./_gateway_types.ts";
 * let caught: unknown;
 * try {
 *   checkShard([2, 2]);
 * } catch (err) {
 *   caught = err;
 * }
 * if (!(caught instanceof TypeError) || checkShard([1, 2])?.[1] !== 2) throw new Error("checkShard");
 * ```
 */
export function checkShard(shard: [number, number] | undefined): [number, number] | undefined {
  if (shard === undefined) return undefined;
  const [id, count] = shard;
  if (!Number.isInteger(id) || !Number.isInteger(count) || count < 1 || id < 0 || id >= count) {
    throw new TypeError(`shard: expected [id, count] with 0 <= id < count, got ${shard}`);
  }
  return shard;
}
